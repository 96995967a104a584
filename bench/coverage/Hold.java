// Coverage program: a JVM with a known heap, some garbage and threads.
import java.util.*;

public class Hold {
    public static void main(String[] a) throws Exception {
        List<byte[]> keep = new ArrayList<>();
        Map<Integer, String> m = new HashMap<>();
        for (int i = 0; i < 300; i++) keep.add(new byte[100_000]);
        for (int i = 0; i < 100_000; i++) m.put(i, "v" + i);
        for (int i = 0; i < 4; i++) {
            Thread t = new Thread(() -> { try { Thread.sleep(3_600_000); } catch (Exception e) {} }, "worker-" + i);
            t.setDaemon(true);
            t.start();
        }
        System.out.println("ready " + keep.size() + " " + m.size());
        System.out.flush();
        Thread.sleep(3_600_000);
    }
}
