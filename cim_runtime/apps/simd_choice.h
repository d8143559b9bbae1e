/* The SIMD path a host app runs its kernels on (runtime.h, "SIMD kernels"). */
#ifndef PICOGPT_APPS_SIMD_CHOICE_H
#define PICOGPT_APPS_SIMD_CHOICE_H

/* Selects the path named by value (the --simd option's text; NULL: the PICOGPT_SIMD
 * environment variable, if set and not empty; otherwise the best path, which is already
 * active): auto, scalar, avx2 or avx512vnni. Returns 0, or prints "error: ..." to stderr
 * (what was wrong and the choices this CPU offers) and returns 2, the apps' usage status. */
int apply_simd_choice(const char *value);

#endif /* PICOGPT_APPS_SIMD_CHOICE_H */
