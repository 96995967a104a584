# numpy arrays: glibc mmapped chunks that numpy's huge-page advice splits
# in two mappings each.
import time

import numpy as np

a = np.ones((4000, 4000))
b = np.full((1500, 1500), 2.0)
c = np.arange(3_000_000, dtype=np.int64)
print("ready", a.nbytes + b.nbytes + c.nbytes, flush=True)
time.sleep(3600)
