#include <stdio.h>
#include <time.h>
/* The clock a busy core really runs at, for the peak FLOP/s in bench_flops.py (--clock-mhz).
 * A chain of dependent integer adds retires one add per cycle, so iterations / seconds is the clock.
 *     cc -O2 -o /tmp/clock benchmarks/clock.c && /tmp/clock
 */
int main(void) {
    struct timespec a, b;
    unsigned long long x = 0, n = 3000000000ULL;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (unsigned long long i = 0; i < n; i++) { __asm__ volatile("add $1, %0" : "+r"(x)); }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9;
    printf("%.0f MHz (x=%llu)\n", n / s / 1e6, x);
    return 0;
}
