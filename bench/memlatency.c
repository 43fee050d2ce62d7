/* Memory latency of this machine: a dependent pointer chase over a random cycle,
 * one load per cache line. docs/BENCHMARKS.md quotes it to explain how the
 * router's cost per event grows with the size of the center.
 *
 *   gcc -O2 -o /tmp/memlatency bench/memlatency.c && /tmp/memlatency
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
int main(void) {
  for (size_t kb = 64; kb <= 262144; kb *= 4) {
    size_t n = kb * 1024 / 64; // one pointer per cache line
    size_t* a = aligned_alloc(64, n * 64);
    size_t* perm = malloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++) perm[i] = i;
    srand(1);
    for (size_t i = n - 1; i > 0; i--) { size_t j = ((size_t)rand() * 65536 + rand()) % (i + 1); size_t t = perm[i]; perm[i] = perm[j]; perm[j] = t; }
    for (size_t i = 0; i < n; i++) a[perm[i] * 8] = perm[(i + 1) % n] * 8;
    size_t p = 0, steps = 20000000;
    struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t s = 0; s < steps; s++) p = a[p];
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / steps;
    printf("%8zu KB: %6.1f ns per dependent load (%zu)\n", kb, ns, p & 1);
    free(a); free(perm);
  }
}
