// Coverage program: C++ with containers filled from several threads.
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

static std::vector<std::unique_ptr<std::vector<std::string>>> keep;

int main() {
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; t++) keep.emplace_back(new std::vector<std::string>());
    for (int t = 0; t < 4; t++)
        threads.emplace_back([t] {
            for (int i = 0; i < 50000; i++) keep[t]->push_back("value number " + std::to_string(i));
        });
    for (auto &t : threads) t.join();
    std::map<int, std::string> m;
    for (int i = 0; i < 100000; i++) m[i] = std::to_string(i);
    std::vector<char> big(16 << 20, 1);
    std::printf("ready %zu %zu %zu\n", keep.size(), m.size(), big.size());
    std::fflush(stdout);
    pause();
}
