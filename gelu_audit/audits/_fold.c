/* One block of an fp32 audit folded in one loop: the per-point arithmetic of
 * ErrorAccumulator.fold_block (gelu_audit/audits/stats.py), fused.
 *
 * NumPy runs that arithmetic as some fifty passes over each block; here it is one pass, tile
 * by tile (TILE points: each read once from memory, the tile's scratch in the core's first
 * caches, the reductions merged over tiles), with the same IEEE double operations in the same
 * order (built with -ffp-contract=off: no fused multiply-adds), so every value is the NumPy
 * path's bit for bit. What depends on order (the
 * float sums, the worst inputs' selection) stays in Python: this loop hands back each
 * differing point's error and residual, in order, for NumPy's own pairwise sums, and the
 * whole error array. tests/audits/test_fused_fold.py compares the two paths' statistics.
 *
 * It covers the common block only: every answer, input and reference finite, no zero answer,
 * input or RN_T(y), binades where the error scales by a power of two (subnormal inputs and
 * results are covered: they are counted, and the failures over normal numbers leave them out).
 * Anything else returns -1 with the accumulator's counts as they were, and the caller folds the
 * block in NumPy.
 *
 * Loaded with ctypes (gelu_audit/audits/fused.py): plain C, no Python API.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { COMBINE_SUM = 0, COMBINE_MAX = 1, COMBINE_SWITCH = 2 };
enum { RULE_FIELDS = 6 }; /* combine, has_below, rtol, atol, switch, below */
enum { HISTOGRAM_POWERS = 12 }; /* len(HISTOGRAM_EDGES): the powers 2^-1 ... 2^9, then 1000 */
enum { TILE = 2048 }; /* points a tile: a tile's arrays stay in the core's first caches */
enum { TOP_HELD = 64 }; /* the most largest errors fold_fp32_block keeps for a threshold */

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
static inline __attribute__((always_inline)) double power_of_two(int64_t k) { return from_bits64((uint64_t)(1023 + k) << 52); }

/* ulp.ulp_errors in its scaled form: |v - (hi + lo)·2^binade| in units of T's spacing there,
 * both sides times 2^-quantum (quantum = spaced - shift, shift = p - 1; spaced: the binade whose
 * spacing T has there, max(binade, emin)), so y's mantissa words are times unit = 2^(binade -
 * quantum): 2^shift in T's normal range, less below it, where NumPy's ldexp scales them by the
 * same power. Exact for binades whose scalings are normal powers of two. One expression for an
 * answer's error and RN_T(y)'s residual. */
static inline __attribute__((always_inline)) double scaled_ulp_error(double v, double hi, double lo, int64_t spaced, int64_t shift, double unit) {
    return fabs((v * power_of_two(shift - spaced) - hi * unit) - lo * unit);
}

static inline uint32_t bits32(float v) {
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

/* formats.ordinals for fp32: consecutive floats differ by 1, both zeros are 0. */
static inline int64_t ordinal(double v) {
    uint32_t u = bits32((float)v);
    int64_t magnitude = (int64_t)(u & 0x7FFFFFFFu);
    return (u >> 31) ? -magnitude : magnitude;
}

/* ulp.histogram_bins for one finite error >= 0, without branches (it runs in a vector loop). */
static inline int64_t histogram_bin(double err) {
    const uint64_t u = bits64(err);
    int64_t powers_below = (int64_t)((u >> 52) & 0x7FF) - 1022 + ((u & ((1ULL << 52) - 1)) != 0);
    powers_below = powers_below < 0 ? 0 : powers_below;
    powers_below = powers_below > HISTOGRAM_POWERS - 1 ? HISTOGRAM_POWERS - 1 : powers_below;
    return u == 0 ? 0 : powers_below + 1 + (u > bits64(1000.0));
}

/* Largest and smallest of non-negative doubles as their bit patterns, whose unsigned order
 * is theirs: integer reductions, which the compiler vectorizes where the same reductions in
 * doubles it may not (their NaN and signed-zero rules). */
static inline int64_t signed_bits(double v) { return (int64_t)bits64(v); }
static inline int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }
static inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

/* `value` where `condition` (0 or 1) holds, else INT64_MAX: in bit operations, which the
 * compiler vectorizes inside a reduction where a conditional expression it may not. */
static inline int64_t where_or_max(int64_t condition, int64_t value) {
    const int64_t mask = -condition;
    return (value & mask) | (INT64_MAX & ~mask);
}

/* The first position holding `target` (one is there), for non-negative doubles (compared by
 * their bit patterns): the least such index, a reduction over every position, which
 * vectorizes where an early exit would not. */
static inline int64_t first_at(const double *values, int64_t n, double target) {
    const int64_t key = signed_bits(target);
    int64_t first = INT64_MAX;
    for (int64_t i = 0; i < n; i++) first = min_i64(first, where_or_max(signed_bits(values[i]) == key, i));
    return first;
}

/* A tile's scratch (|y|, the absolute errors and one rule's ratios: TILE doubles each) and, per
 * rule, what fold_rules merges over tiles: the largest ratio so far (its bits, best_key: -1
 * before the first tile), its first position and the breaks. */
typedef struct {
    double *magnitudes, *abs_errors, *ratios;
    int64_t *best_key, *first, *breaks;
} TileScratch;

/* 0, or -1 where memory ran out (then nothing is held). first_before: each rule's first position
 * until a tile has one (what its caller reports for no points at all). */
static inline __attribute__((always_inline)) int64_t make_tile_scratch(
    TileScratch *scratch, int64_t n_rules, int64_t first_before) {
    const size_t rules_held = (size_t)(n_rules > 0 ? n_rules : 1);
    scratch->magnitudes = malloc(3 * TILE * sizeof(double));
    scratch->best_key = malloc(3 * rules_held * sizeof(int64_t));
    if (!scratch->magnitudes || !scratch->best_key) {
        free(scratch->magnitudes);
        free(scratch->best_key);
        return -1;
    }
    scratch->abs_errors = scratch->magnitudes + TILE;
    scratch->ratios = scratch->magnitudes + 2 * TILE;
    scratch->first = scratch->best_key + rules_held;
    scratch->breaks = scratch->first + rules_held;
    for (int64_t r = 0; r < n_rules; r++) {
        scratch->best_key[r] = -1; /* below every ratio's bits: the first tile's largest replaces it */
        scratch->first[r] = first_before;
        scratch->breaks[r] = 0;
    }
    return 0;
}

/* Each rule's largest ratio (rule_ratio) and its breaks and first position (rule_counts: two
 * each), as fold_fp32_block and tiny_float64_errors hand them back. */
static inline __attribute__((always_inline)) void rules_out(
    const TileScratch *scratch, int64_t n_rules, double *rule_ratio, int64_t *rule_counts) {
    for (int64_t r = 0; r < n_rules; r++) {
        rule_ratio[r] = scratch->best_key[r] < 0 ? 0.0 : from_bits64((uint64_t)scratch->best_key[r]);
        rule_counts[2 * r] = scratch->breaks[r];
        rule_counts[2 * r + 1] = scratch->first[r];
    }
}

static inline __attribute__((always_inline)) void free_tile_scratch(TileScratch *scratch) {
    free(scratch->magnitudes);
    free(scratch->best_key);
}

/* policies.violation_ratios for each rule (RULE_FIELDS doubles each) over one tile of points
 * starting at position `start` (|y| and the absolute errors in the scratch), merged into the
 * tiles' so far: per rule, the largest ratio error / allowance, its first position (a later
 * tile's replaces it only where its own is larger, so the least such position over the whole,
 * as np.argmax gives) and the breaks (ratio > 1). Inlined into each instruction set's build of
 * its callers. */
static inline __attribute__((always_inline)) void fold_rules(
    int64_t start, int64_t n, const double *x, const TileScratch *scratch, int64_t n_rules,
    const double *rules) {
    const double *magnitudes = scratch->magnitudes, *abs_errors = scratch->abs_errors;
    double *ratios = scratch->ratios;
    int64_t *best_key = scratch->best_key, *first = scratch->first, *breaks = scratch->breaks;
    for (int64_t r = 0; r < n_rules; r++) { /* one rule at a time */
        const double *rule = rules + RULE_FIELDS * r;
        const int64_t combine = (int64_t)rule[0], has_below = rule[1] != 0;
        const double rtol = rule[2], atol = rule[3], switch_at = rule[4], below = rule[5];
        int64_t max_ratio = 0;
        int64_t tile_breaks = 0;
        for (int64_t i = 0; i < n; i++) {
            const double magnitude = magnitudes[i], abs_err = abs_errors[i], relative = rtol * magnitude;
            const double sum = atol + relative, larger = atol >= relative ? atol : relative;
            const double switched = magnitude > switch_at ? relative : atol;
            double allowed = combine == COMBINE_SUM ? sum : combine == COMBINE_MAX ? larger : switched;
            allowed = has_below & (x[i] <= below) & (atol > allowed) ? atol : allowed;
            /* the double nearest a / b is above 1 exactly where a > b (a >= 0, b >= +0):
             * a > b puts a at least one ulp of b above b, so a / b above 1 + 2^-53, which
             * rounds to 1 + 2^-52 or more */
            tile_breaks += abs_err > allowed;
            const double quotient = abs_err / allowed;
            const double ratio = abs_err == 0 ? 0.0 : quotient;
            ratios[i] = ratio;
            max_ratio = max_i64(max_ratio, signed_bits(ratio));
        }
        breaks[r] += tile_breaks;
        if (n > 0 && max_ratio > best_key[r]) {
            best_key[r] = max_ratio;
            first[r] = start + first_at(ratios, n, from_bits64((uint64_t)max_ratio));
        }
    }
}

/* The calling convention of fold_fp32_block, which gelu_audit/audits/fused.py checks before
 * it calls: a library built from an older source (an editable install not rebuilt) is left
 * alone, and NumPy folds. Raise it with any change to the parameters. */
int64_t fold_abi_version(void) { return 8; }

/* Compiled for each of these instruction sets, the best chosen when the library loads: the
 * loops are vector loops, and IEEE arithmetic gives the same bits in any of them. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(__clang__)
#define VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* Returns how many points differ from RN_T(y) bit for bit (their residuals and errors are
 * written, in order, to residual_at and errors_at), or -1 if the block is not one this loop
 * covers or memory ran out (then sketch and histogram are as they were, and nothing else
 * written is meaningful). errors and distances: each point's ULP error and ordinal distance.
 *
 * Tile by tile: one loop reads each input once, checks the block is covered, and makes the
 * errors, distances, |y|, the absolute errors and every reduction; then the differing points
 * are gathered and counted in the sketch and histogram, and the rules folded, over the tile
 * while it is in cache (each pass over a whole block read it from memory again: 18-20 -> 12-14 ns
 * a point, fp32 core blocks, 2026-11-30). A tile found not covered stops the loop, and the counts
 * the tiles before it added to the sketch are taken back.
 *
 * scalars out: largest error, largest absolute error, largest relative error (normal |y|),
 *   failing x nearest 0 below (NaN: none), failing x nearest 0 above (NaN: none), and the
 *   top-th largest error counting repeats (np.partition(errors, n - top)[n - top], the
 *   threshold of the block's worst inputs; NaN where top is 0 or above TOP_HELD, or n < top),
 *   then the failing x nearest 0 below and above among the points where neither x nor RN_T(y)
 *   is subnormal.
 * integers out: position of the first largest error, answers not RN_T(y) (ordinal distance
 *   above 0), largest ordinal distance, whether any |y| is normal, errors above the
 *   tolerance, subnormal inputs, subnormal RN_T(y) where the input is normal.
 * Per rule (rules: RULE_FIELDS doubles each): the largest ratio error / allowance
 *   (rule_ratio), the breaks (ratio > 1) and the first position of the largest ratio
 *   (rule_counts: two each). sketch and histogram: counts added. */
VECTOR_CLONES
int64_t fold_fp32_block(
    int64_t n, const double *got, const double *x, const int64_t *binade, const double *hi,
    const double *lo, const double *rounded, const double *residual, int64_t precision,
    int64_t emin, double tolerance, int64_t top, int64_t n_rules, const double *rules, double *errors,
    int64_t *distances, double *residual_at, double *errors_at, int64_t *sketch, int64_t sketch_shift,
    int64_t *histogram, double *scalars, int64_t *integers, double *rule_ratio,
    int64_t *rule_counts) {
    const double smallest_normal = ldexp(1.0, (int)emin);
    const int64_t shift = precision - 1;
    TileScratch scratch;
    if (make_tile_scratch(&scratch, n_rules, INT64_MAX) < 0) return -1;
    double *magnitudes = scratch.magnitudes, *abs_errors = scratch.abs_errors;
    int64_t max_err = -1, first_max_err = INT64_MAX, max_abs = 0, max_rel = 0, wrong = 0, max_ordinal = 0;
    int64_t any_normal = 0, below_key = INT64_MAX, above_key = INT64_MAX, m = 0, covered = 1, over = 0;
    int64_t normal_below_key = INT64_MAX, normal_above_key = INT64_MAX, subnormal_inputs = 0, subnormal_results = 0;
    int64_t bins[4][HISTOGRAM_POWERS + 2] = {{0}}; /* four copies: no chain of increments */
    /* the top largest errors so far, smallest first: kept[0] is the top-th largest once `held`
     * reaches top (a tile whose largest is not above it adds nothing, and is not looked at) */
    double kept[TOP_HELD];
    int64_t held = 0;
    const int64_t keeping = top > 0 && top <= TOP_HELD;
    const int64_t tolerance_key = tolerance < 0 ? -1 : signed_bits(fabs(tolerance)); /* -0: +0 */
    const uint64_t sign = 1ULL << 63;
    int64_t start = 0;
    for (; start < n; start += TILE) {
        const int64_t t = n - start < TILE ? n - start : TILE;
        const double *g_ = got + start, *x_ = x + start, *h_ = hi + start, *l_ = lo + start;
        const double *r_ = rounded + start;
        const int64_t *b_ = binade + start;
        double *e_ = errors + start;
        int64_t *d_ = distances + start;
        int64_t tile_max = 0;
        for (int64_t i = 0; i < t; i++) {
            /* the block is one this loop covers: every value finite, no zero answer, input or
             * RN_T(y), binades whose scalings (and y as float64) are built as normal powers of two */
            const double g = g_[i], h = h_[i], l = l_[i], v = x_[i], r = r_[i];
            const double ax = fabs(v), ar = fabs(r), ag = fabs(g), ah = fabs(h), al = fabs(l);
            const int64_t b = b_[i];
            const int64_t spaced = b > emin ? b : emin; /* T's spacing there: subnormal y share emin's */
            covered &= (ag <= DBL_MAX) & (ag > 0) & (ax <= DBL_MAX) & (ax > 0) & (ah <= DBL_MAX) & (ah > 0) &
                       (al <= DBL_MAX) & (ar <= DBL_MAX) & (ar > 0) & (spaced >= shift - 1023) &
                       (spaced <= shift + 1022) & (b - spaced + shift >= -1022) & (b >= -1022) & (b <= 1000);
            const double error = scaled_ulp_error(g, h, l, spaced, shift, power_of_two(b - spaced + shift));
            e_[i] = error;
            /* y as float64 (ReferenceValues.approximate): (hi + lo)·2^binade, a normal number */
            const double approx = (h + l) * power_of_two(b);
            const double magnitude = fabs(approx), abs_err = fabs(g - approx);
            magnitudes[i] = magnitude;
            abs_errors[i] = abs_err;
            const int64_t distance = llabs(ordinal(g) - ordinal(r));
            d_[i] = distance;
            tile_max = max_i64(tile_max, signed_bits(error));
            max_abs = max_i64(max_abs, signed_bits(abs_err));
            wrong += distance > 0;
            max_ordinal = max_i64(max_ordinal, distance);
            const int64_t normal = magnitude >= smallest_normal;
            any_normal |= normal;
            max_rel = max_i64(max_rel, normal ? signed_bits(abs_err / magnitude) : 0);
            /* stats.failure_bounds: the failing x nearest 0 on each side (by |x|; no x is 0
             * here). In bit patterns, as integers: an error (>= 0) exceeds the tolerance where
             * its pattern exceeds the tolerance's (every error does where it is below 0). */
            const uint64_t u = bits64(v);
            const int64_t failing = signed_bits(error) > tolerance_key;
            over += failing;
            below_key = min_i64(below_key, where_or_max(failing & (u > sign), (int64_t)(u & ~sign)));
            above_key = min_i64(above_key, where_or_max(failing & (u < sign), (int64_t)u));
            /* stats._subnormal_masks: x subnormal; RN_T(y) subnormal where x is not (neither is
             * 0 here); and the failures over normal numbers, where neither is subnormal */
            const int64_t subnormal_x = ax < smallest_normal, subnormal_r = ar < smallest_normal;
            subnormal_inputs += subnormal_x;
            subnormal_results += subnormal_r & !subnormal_x;
            const int64_t normal_failing = failing & !subnormal_x & !subnormal_r;
            normal_below_key = min_i64(normal_below_key, where_or_max(normal_failing & (u > sign), (int64_t)(u & ~sign)));
            normal_above_key = min_i64(normal_above_key, where_or_max(normal_failing & (u < sign), (int64_t)u));
        }
        if (!covered) break;
        if (tile_max > max_err) { /* the first position of the largest error, over the tiles */
            max_err = tile_max;
            first_max_err = start + first_at(e_, t, from_bits64((uint64_t)tile_max));
        }
        if (keeping && (held < top || from_bits64((uint64_t)tile_max) > kept[0])) {
            for (int64_t i = 0; i < t; i++) {
                const double error = e_[i];
                if (held == top && !(error > kept[0])) continue;
                int64_t k = held < top ? held++ : 0; /* the slot freed: a new one, or the smallest */
                for (; k > 0 && kept[k - 1] > error; k--) kept[k] = kept[k - 1]; /* (a new slot) */
                for (; k + 1 < held && kept[k + 1] < error; k++) kept[k] = kept[k + 1]; /* (the smallest) */
                kept[k] = error;
            }
        }
        for (int64_t i = 0; i < t; i++) { /* the differing points' residuals and errors, in order */
            const double error = e_[i];
            residual_at[m] = residual[start + i];
            errors_at[m] = error;
            m += bits64(g_[i]) != bits64(r_[i]);
            sketch[bits32((float)error) >> sketch_shift]++;
            bins[i & 3][histogram_bin(error)]++;
        }
        fold_rules(start, t, x_, &scratch, n_rules, rules);
    }
    if (covered) rules_out(&scratch, n_rules, rule_ratio, rule_counts);
    free_tile_scratch(&scratch);
    if (!covered) { /* nothing counted: take back the tiles' sketch counts before this one */
        for (int64_t i = 0; i < start; i++) sketch[bits32((float)errors[i]) >> sketch_shift]--;
        return -1;
    }
    for (int c = 0; c < 4; c++)
        for (int k = 0; k < HISTOGRAM_POWERS + 2; k++) histogram[k] += bins[c][k];
    scalars[0] = max_err < 0 ? 0.0 : from_bits64((uint64_t)max_err);
    scalars[1] = from_bits64((uint64_t)max_abs);
    scalars[2] = from_bits64((uint64_t)max_rel);
    scalars[3] = below_key == INT64_MAX ? NAN : -from_bits64((uint64_t)below_key);
    scalars[4] = above_key == INT64_MAX ? NAN : from_bits64((uint64_t)above_key);
    scalars[5] = keeping && held == top ? kept[0] : NAN;
    scalars[6] = normal_below_key == INT64_MAX ? NAN : -from_bits64((uint64_t)normal_below_key);
    scalars[7] = normal_above_key == INT64_MAX ? NAN : from_bits64((uint64_t)normal_above_key);
    integers[0] = first_max_err;
    integers[1] = wrong;
    integers[2] = max_ordinal;
    integers[3] = any_normal;
    integers[4] = over;
    integers[5] = subnormal_inputs;
    integers[6] = subnormal_results;
    return m;
}

enum { TINY_FORMULA = 0, TINY_DERIVATIVE = 1 };

/* The statistics against y as float64 of answers that are RN_T(y) at every point of a span of
 * the fast tier's region ``tiny`` (KnownBlock._float64_errors, gelu_audit/audits/known_blocks.py:
 * a known tiny span's ULP statistics are carried over, but y as float64 does not scale from
 * binade to binade above 2^-55): the largest absolute and relative errors (scalars: two) and
 * each rule's largest ratio, breaks and first position of the largest ratio (as fold_fp32_block
 * gives them).
 *
 * The references are the tier's own closed form for that region, made here point by point with
 * the same double operations (gelu_audit/references: fast_tier._tiny with every x/2 normal, for
 * a formula; fast_gradient._tiny, for its derivative), then y as float64 and the rules as NumPy's
 * passes make them (ReferenceValues.approximate, policies.violation_ratios):
 *   formula (kind TINY_FORMULA, k1 = c): half = x/2, frexp(half) = (m, e), below = (m == -1/2),
 *     hi = below ? -2 : 2m, binade = e - 1 - below, lo = (c·x)·(2·hi), RN_T(y) = half;
 *   derivative (TINY_DERIVATIVE, k1 = 4·2c, k2 = 2·2c): x < 0 ? (binade -2, hi 2, lo k1·x)
 *     : (-1, 1, k2·x), RN_T(y) = 1/2.
 * Tile by tile, merged: maxima, sums, and a later tile's largest ratio replaces an earlier one's
 * only where it is larger (the first position over the whole, as np.argmax gives).
 *
 * Returns 0, or -1 (nothing written) where an x/2 is not a normal double (formula), or a y as
 * float64 is not finite or is below 2^emin (the caller's NumPy passes then decide). */
VECTOR_CLONES
int64_t tiny_float64_errors(
    int64_t n, const double *x, int64_t kind, double k1, double k2, int64_t emin, int64_t n_rules,
    const double *rules, double *scalars, double *rule_ratio, int64_t *rule_counts) {
    const double smallest_normal = ldexp(1.0, (int)emin);
    TileScratch scratch;
    if (make_tile_scratch(&scratch, n_rules, 0) < 0) return -1;
    double *magnitudes = scratch.magnitudes, *abs_errors = scratch.abs_errors;
    const uint64_t exponent_field = 0x7FFULL << 52;
    int64_t max_abs = 0, max_rel = 0, covered = 1;
    for (int64_t start = 0; start < n && covered; start += TILE) {
        const int64_t t = n - start < TILE ? n - start : TILE;
        for (int64_t i = 0; i < t; i++) {
            const double v = x[start + i];
            double hi, lo, rounded;
            int64_t b, normal = 1;
            if (kind == TINY_FORMULA) {
                const double half = 0.5 * v;
                /* frexp of a normal double, from its bits: m in [1/2, 1) with half's sign */
                const uint64_t u = bits64(half), field = u & exponent_field;
                normal = (field != 0) & (field != exponent_field);
                const double m = from_bits64((u & ~exponent_field) | (1022ULL << 52));
                const int64_t e = (int64_t)(field >> 52) - 1022;
                const int64_t below = m == -0.5;
                hi = below ? -2.0 : 2 * m;
                b = e - 1 - below;
                lo = k1 * v * (2 * hi);
                rounded = half;
            } else {
                const int64_t below = v < 0;
                b = below ? -2 : -1;
                hi = below ? 2.0 : 1.0;
                lo = below ? k1 * v : k2 * v;
                rounded = 0.5;
            }
            /* ldexp(hi + lo, binade) as a product by 2^binade: the same double where y is normal
             * (written out: through power_of_two GCC 12 leaves this loop scalar) */
            const int64_t in_range = (b >= -1022) & (b <= 1023);
            const double approx = (hi + lo) * from_bits64((uint64_t)(1023 + (in_range ? b : 0)) << 52);
            magnitudes[i] = fabs(approx);
            abs_errors[i] = fabs(rounded - approx);
            covered &= normal & in_range & (magnitudes[i] <= DBL_MAX) & (magnitudes[i] >= smallest_normal);
        }
        for (int64_t i = 0; i < t; i++) {
            max_abs = max_i64(max_abs, signed_bits(abs_errors[i]));
            max_rel = max_i64(max_rel, signed_bits(abs_errors[i] / magnitudes[i]));
        }
        fold_rules(start, t, x + start, &scratch, n_rules, rules);
    }
    if (covered) {
        scalars[0] = from_bits64((uint64_t)max_abs);
        scalars[1] = from_bits64((uint64_t)max_rel);
        rules_out(&scratch, n_rules, rule_ratio, rule_counts);
    }
    free_tile_scratch(&scratch);
    return covered ? 0 : -1;
}

/* RN_T(y)'s own ULP errors (the residuals, numerics/ulp.py ulp_errors of RN_T(y) in its scaled
 * form: both sides times 2^-quantum, exact) for a block whose references are all finite, none
 * zero, and whose binades scale by building a power of two (the same conditions as that form's;
 * ReferenceBlock.build). One pass instead of NumPy's six. Returns 0, or -1 (nothing written)
 * where the block is not one it covers (NumPy then computes them). */
VECTOR_CLONES
int64_t rounded_residuals(
    int64_t n, const double *rounded, const int64_t *binade, const double *hi, const double *lo,
    int64_t precision, int64_t emin, double *residual) {
    const int64_t shift = precision - 1;
    const double unit = ldexp(1.0, (int)shift);
    int64_t covered = 1;
    for (int64_t i = 0; i < n; i++) {
        const int64_t b = binade[i];
        const double ar = fabs(rounded[i]), ah = fabs(hi[i]), al = fabs(lo[i]);
        covered &= (ar <= DBL_MAX) & (ah <= DBL_MAX) & (ah > 0) & (al <= DBL_MAX) & (b >= emin) &
                   (b >= shift - 1023) & (b <= shift + 1022);
    }
    if (!covered) return -1;
    for (int64_t i = 0; i < n; i++) residual[i] = scaled_ulp_error(rounded[i], hi[i], lo[i], binade[i], shift, unit); /* (binades from emin) */
    return 0;
}
