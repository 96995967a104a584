// xthread_bench [PER_PRODUCER]
//
// The threaded workload of bench/calltree.sh: 3 producers allocate (new,
// std::string, std::vector) and hand the blocks through a queue to 2
// consumers, which free them, so every free happens on another thread
// than its allocation (as crates/vmmap-cli/tests/fixtures/xthread.cpp,
// scaled up). Each item is three allocations and three frees; the
// default of 400000 items per producer makes 7.2 million operations
// over 5 threads. Prints a checksum, the same on every run.
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct Item {
    std::string text;
    std::vector<long> numbers;
};

int main(int argc, char **argv) {
    const int producers = 3, consumers = 2;
    const int per = argc > 1 ? std::atoi(argv[1]) : 400000;
    std::deque<Item *> queue;
    std::mutex m;
    std::condition_variable cv;
    int done = 0;
    long sums[2] = {0, 0};
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; p++)
        threads.emplace_back([&, p] {
            for (int i = 0; i < per; i++) {
                auto *it = new Item{std::string(16 + i % 100, 'a' + p), {}};
                it->numbers.assign(1 + i % 50, i);
                std::lock_guard<std::mutex> g(m);
                queue.push_back(it);
                cv.notify_one();
            }
            std::lock_guard<std::mutex> g(m);
            done++;
            cv.notify_all();
        });
    for (int c = 0; c < consumers; c++)
        threads.emplace_back([&, c] {
            for (;;) {
                std::unique_lock<std::mutex> g(m);
                cv.wait(g, [&] { return !queue.empty() || done == producers; });
                if (queue.empty()) return;
                Item *it = queue.front();
                queue.pop_front();
                g.unlock();
                sums[c] += (long)it->text.size() + it->numbers.back() * (long)it->numbers.size();
                delete it;
            }
        });
    for (auto &t : threads) t.join();
    std::printf("items %d checksum %ld\n", producers * per, sums[0] + sums[1]);
    return 0;
}
