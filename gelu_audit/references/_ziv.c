/* Ziv's one-rounding test of the fast reference tier in one pass: fast_tier.one_rounding
 * (gelu_audit/references/fast_tier.py) for NumPy's arrays, which NumPy runs as some twenty
 * passes over each block.
 *
 * The same operations give the same bits: frexp, the scalings by powers of two, rint, the
 * comparisons and copysign are exact (or, where a scaling leaves the normal range, rounded once,
 * to nearest, as ldexp rounds), and the two sums are the same IEEE double additions (built with
 * -ffp-contract=off). rint is round_to_integer's exact form of it; frexp is read from the bits (a subnormal |y| scaled by 2^54 first); each
 * ldexp is a product by the power of two built from its bits, which is exact or rounds as ldexp
 * does, for every exponent the formats with at most 24 significant bits need (the caller
 * declines the others). tests/references/test_fast_tier.py compares the two on the tier's edge
 * values (binade and sign crossings, ties, T's subnormals, overflow, 0, inf and NaN) and on every
 * binade of fp32.
 *
 * Loaded with ctypes (gelu_audit/references/fast_tier.py): plain C, no Python API.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

/* The calling convention of one_rounding, which fast_tier.py checks before it calls. Raise it
 * with any change to the parameters. */
int64_t ziv_abi_version(void) { return 1; }

static inline uint64_t bits64(double v) {
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

static inline double from_bits64(uint64_t u) {
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* 2^k for -1022 <= k <= 1023, from its bits. */
static inline double power_of_two(int64_t k) { return from_bits64((uint64_t)(1023 + k) << 52); }

/* rint (to the nearest integer, ties to even, in the default rounding mode) without the library
 * call the compiler keeps for rint, which would stop the loop from being vectorized: below 2^52
 * the sum with 2^52 rounds |v| to an integer, and the difference is exact; the sign (and -0)
 * comes back with copysign; from 2^52 up, and for inf and NaN, v is its own. */
static inline double round_to_integer(double v) {
    const double magnitude = fabs(v), rounded = copysign((magnitude + 0x1p52) - 0x1p52, v);
    return magnitude < 0x1p52 ? rounded : v; /* (both made, then one chosen: a vector select) */
}

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* Where y ± radius lies in one binade of one sign and rounds to one value of T (precision
 * significant bits, emin, largest the largest finite value), that value is RN_T of anything in
 * between: per point, decided (done: 0 or 1), y's binade, 2·y's signed mantissa (hi) and RN_T
 * (rounded), the last three as one_rounding gives them at every point. precision <= 24. All
 * int64 (narrower outputs keep the loop from being vectorized). */
VECTOR_CLONES
void one_rounding(int64_t n, const double *y, const double *radius, int64_t precision, int64_t emin,
                  double largest, int64_t *done, int64_t *binade, double *hi, double *rounded) {
    const uint64_t exponent_field = 0x7FFULL << 52;
    for (int64_t i = 0; i < n; i++) {
        const double v = y[i], r = radius[i], ay = fabs(v);
        /* frexp(|y|) as NumPy gives it: |y| = m·2^e with m in [1/2, 1); 0, inf and NaN: (|y|, 0) */
        const int64_t subnormal = ((bits64(ay) & exponent_field) == 0) & (ay != 0);
        const double scaled_up = ay * 0x1p54, scaled = subnormal ? scaled_up : ay;
        const uint64_t u = bits64(scaled), field = u & exponent_field;
        const int64_t regular = (field != 0) & (field != exponent_field);
        const int64_t e = regular ? (int64_t)(field >> 52) - 1022 - (subnormal ? 54 : 0) : 0;
        const double m = regular ? from_bits64((u & ~exponent_field) | (1022ULL << 52)) : ay;
        const int64_t b = e - 1;
        const int64_t quantum = (b > emin ? b : emin) - (precision - 1);
        /* in units of T's spacing at y's binade */
        const double low = (ay - r) * power_of_two(-quantum), high = (ay + r) * power_of_two(-quantum);
        const double units = round_to_integer(low);
        /* 2^binade in those units: below float64's normal range for fp16 and a subnormal y (down to
         * 2^-1050), so made as 2^(k + 64) · 2^-64, a product of two powers of two: exact */
        const double bottom = power_of_two(b - quantum + 64) * 0x1p-64;
        const double magnitude = units * power_of_two(quantum);
        const int64_t overflows = magnitude > largest; /* then the upper end does too: both ±inf */
        done[i] = (low >= bottom) & (high < 2 * bottom) & ((units == round_to_integer(high)) | overflows);
        binade[i] = b;
        hi[i] = copysign(2 * m, v);
        rounded[i] = copysign(overflows ? INFINITY : magnitude, v);
    }
}
