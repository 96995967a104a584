# Coverage program: CPython with many small objects and a few large ones.
import time
keep = [(i, str(i)) for i in range(300000)]
big = [bytearray(1 << 20) for _ in range(8)]
print("ready", len(keep), len(big), flush=True)
time.sleep(3600)
