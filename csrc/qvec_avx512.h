/*
 * qvec_avx512.h - the AVX-512BW column sums of qvec.c's integer product (x86-64, -mavx512bw;
 * with vpdpwssd where the compiler also targets AVX512-VNNI, -mavx512vnni). Included by
 * qvec_avx2.h only, when the compiler targets AVX-512BW (RNE__Q_AVX512BW); qvec_avx2.h's
 * rne__mac_simd calls these for the blocks of 32 columns and more, its own AVX2 code for the last
 * 16 and 8 columns, the scalar code for the rest. Requantization, gates and the other rows are
 * qvec_avx2.h's (AVX-512F where targeted).
 *
 * The method is qvec_avx2.h's, twice as wide: inputs in pairs (x[p], x[p+1]) broadcast to every
 * int32 lane, the two rows' weights (int8 widened by vpmovsxbw) interleaved by vpunpck{l,h}wd
 * into int16 pairs (w[p][c], w[p+1][c]), so that one vpmaddwd forms x[p] w[p][c] + x[p+1]
 * w[p+1][c] in each of 16 int32 lanes: 32 columns per two registers, LO holding columns 0-3 |
 * 8-11 | 16-19 | 24-27 (one group per 128-bit lane), HI 4-7 | 12-15 | 20-23 | 28-31
 * (rne__avx512_store32 puts them back in column order).
 *
 * With VNNI, int8 weights take vpdpbusd instead, four rows a step without widening the weights
 * (rne__avx512_bus, below: 128 and 64 columns at a time); the int16 weights and the last 32 int8
 * columns take vpdpwssd, which does vpmaddwd and the vpaddd after it in one instruction:
 * acc + p1 + p2 modulo 2^32, without saturation (vpdpwssds is the saturating one, not used).
 * vpmaddwd + vpaddd give that same sum modulo 2^32 (vpmaddwd's one wrap, (-32768)^2 twice -> 0x80000000, is 2^31
 * modulo 2^32), so the two forms agree bit for bit always, and both are the exact sum where it fits
 * int32. qvec.c's bounds are unchanged: a pair sum is below 2^31 in magnitude (|w| <= 32767), an
 * acc32 column's every partial sum fits int32 (proved at load), and the acc64 chunks keep
 * qvec_avx2.h's limits (RNE__Q_CHUNK rows: int8 pairs at most 2^23, 128 of them 2^30; int16
 * through x = 256 xh + xl, pairs below 2^24, 128 of them below 2^31).
 */
#ifndef RNE_QVEC_AVX512_H
#define RNE_QVEC_AVX512_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qvec.h"

/* A += the pair sums of P times XX, in int32 lanes (modulo 2^32: the same either way, above) */
#if defined(__AVX512VNNI__)
#define RNE__AVX512_MAC(A, P, XX) (A) = _mm512_dpwssd_epi32((A), (P), (XX))
#else
#define RNE__AVX512_MAC(A, P, XX) (A) = _mm512_add_epi32((A), _mm512_madd_epi16((P), (XX)))
#endif

/* 32 weights of a row from byte address `at` on, as int16 */
static RNE__Q_INLINE __m512i rne__w32(const uint8_t *at, int s8)
{
    if (s8)
        return _mm512_cvtepi8_epi16(_mm256_loadu_si256((const __m256i *)(const void *)at));
    return _mm512_loadu_si512((const void *)at);
}

/* Rows p and p + 1 (R1 bytes after wp; R1 = 0: row p twice) at the 32 columns from byte OFF on, as
 * int16 pairs: LO columns 0-3 | 8-11 | 16-19 | 24-27, HI 4-7 | 12-15 | 20-23 | 28-31 */
#define RNE__AVX512_PAIRS(OFF, R1, LO, HI)                                                        \
    do {                                                                                          \
        const __m512i r0_ = rne__w32(wp + (OFF), s8), r1_ = rne__w32(wp + (R1) + (OFF), s8);      \
        LO = _mm512_unpacklo_epi16(r0_, r1_);                                                     \
        HI = _mm512_unpackhi_epi16(r0_, r1_);                                                     \
    } while (0)

/* The int32 lanes LO, HI of RNE__AVX512_PAIRS's columns in column order: *c0 columns 0-15, *c1
 * 16-31 (the 64-bit pairs of the two registers, as qword indices 0-7 of LO and 8-15 of HI) */
static RNE__Q_INLINE void rne__avx512_order(__m512i lo, __m512i hi, __m512i *c0, __m512i *c1)
{
    *c0 = _mm512_permutex2var_epi64(lo, _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), hi);
    *c1 = _mm512_permutex2var_epi64(lo, _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15), hi);
}

/* o[0 .. 32) = the int32 sums LO, HI in column order */
static RNE__Q_INLINE void rne__avx512_store32(int32_t *o, __m512i lo, __m512i hi)
{
    __m512i c0, c1;
    rne__avx512_order(lo, hi, &c0, &c1);
    _mm512_storeu_si512((void *)o, c0);
    _mm512_storeu_si512((void *)(o + 16), c1);
}

/* out[0 .. 32 g) = the int32 column sums of columns j .. j + 32 g (g <= 4: 8 accumulators) over
 * rows 0 .. k-1, the pair sums added in int32: the caller guarantees that every partial sum fits
 * (acc32, or a chunk of rows). s8, g: constants of an instantiation. */
static RNE__Q_INLINE void rne__avx512_sum32(int32_t *out, const int16_t *x, size_t k,
                                            const uint8_t *w, size_t ldw, size_t j, int s8,
                                            size_t g)
{
    const size_t es = s8 ? 1u : 2u, row = ldw * es;
    const uint8_t *wp = w + j * es;
    const __m512i z = _mm512_setzero_si512();
    __m512i s0 = z, s1 = z, s2 = z, s3 = z, s4 = z, s5 = z, s6 = z, s7 = z, lo, hi;
    size_t p;
#define RNE__AVX512_ADD(G, A, B, R1, XX)                                                          \
    if (g > (G)) {                                                                                \
        RNE__AVX512_PAIRS(32 * (G) * es, R1, lo, hi);                                             \
        RNE__AVX512_MAC(A, lo, XX);                                                               \
        RNE__AVX512_MAC(B, hi, XX);                                                               \
    }
#define RNE__AVX512_STEP(R1, XX)                                                                  \
    RNE__AVX512_ADD(0, s0, s1, R1, XX)                                                            \
    RNE__AVX512_ADD(1, s2, s3, R1, XX)                                                            \
    RNE__AVX512_ADD(2, s4, s5, R1, XX)                                                            \
    RNE__AVX512_ADD(3, s6, s7, R1, XX)
    if (k % 2 != 0) {                               /* the last row of an odd k first */
        const __m512i xx = _mm512_set1_epi32((int32_t)(uint16_t)x[k - 1]);     /* (x, 0) */
        wp += (k - 1) * row;
        RNE__AVX512_STEP(0, xx)
        wp = w + j * es;
    }
    for (p = 0; p + 2 <= k; p += 2, wp += 2 * row) {
        int32_t pair;
        memcpy(&pair, x + p, sizeof pair);          /* x[p] in the low half (little-endian) */
        {
            const __m512i xx = _mm512_set1_epi32(pair);
            RNE__AVX512_STEP(row, xx)
        }
    }
#undef RNE__AVX512_STEP
#undef RNE__AVX512_ADD
    rne__avx512_store32(out, s0, s1);
    if (g > 1)
        rne__avx512_store32(out + 32, s2, s3);
    if (g > 2)
        rne__avx512_store32(out + 64, s4, s5);
    if (g > 3)
        rne__avx512_store32(out + 96, s6, s7);
}

/* o[0 .. 32) (add: +=) 256 H + L in int64, from the int32 sums H, L of 32 columns: LO and HI
 * registers of each, as RNE__AVX512_PAIRS left them */
static RNE__Q_INLINE void rne__avx512_put64(int64_t *o, int add, __m512i hlo, __m512i hhi,
                                            __m512i llo, __m512i lhi)
{
    __m512i h[2], l[2];
    size_t i;
    rne__avx512_order(hlo, hhi, &h[0], &h[1]);
    rne__avx512_order(llo, lhi, &l[0], &l[1]);
    for (i = 0; i < 4; i++) {
        const __m256i hh = i % 2 ? _mm512_extracti64x4_epi64(h[i / 2], 1)
                                 : _mm512_castsi512_si256(h[i / 2]);
        const __m256i ll = i % 2 ? _mm512_extracti64x4_epi64(l[i / 2], 1)
                                 : _mm512_castsi512_si256(l[i / 2]);
        const __m512i v = _mm512_add_epi64(_mm512_slli_epi64(_mm512_cvtepi32_epi64(hh), 8),
                                           _mm512_cvtepi32_epi64(ll));
        void *d = (void *)(o + 8 * i);
        _mm512_storeu_si512(d, add ? _mm512_add_epi64(_mm512_loadu_si512(d), v) : v);
    }
}

/* acc64 for int16 weights, columns j .. j + 32 g - 1 (g <= 2) over rows 0 .. k-1,
 * k <= RNE__Q_CHUNK: qvec_avx2.h's rne__avx2_split_s16 (x = 256 xh + xl, two int32 sums per
 * column, each within int32 over a chunk) 32 columns per register pair; then
 * acc[j + c] (add: +)= 256 hi + lo in int64. g: a constant of an instantiation. */
static RNE__Q_INLINE void rne__avx512_split_s16(int64_t *acc, int add, const int16_t *x,
                                                size_t k, const uint8_t *w, size_t ldw, size_t j,
                                                size_t g)
{
    const int s8 = 0;
    const size_t es = 2, row = ldw * es;
    const uint8_t *wp = w + j * es;
    const __m512i z = _mm512_setzero_si512(), low = _mm512_set1_epi16(255);
    __m512i h0 = z, h1 = z, h2 = z, h3 = z, l0 = z, l1 = z, l2 = z, l3 = z, a, b;
    size_t p;
#define RNE__AVX512_SPLIT(R1, XX)                                                                 \
    do {                                                                                          \
        const __m512i xh_ = _mm512_srai_epi16(XX, 8), xl_ = _mm512_and_si512(XX, low);            \
        RNE__AVX512_PAIRS(0, R1, a, b);                                                           \
        RNE__AVX512_MAC(h0, a, xh_);                                                              \
        RNE__AVX512_MAC(l0, a, xl_);                                                              \
        RNE__AVX512_MAC(h1, b, xh_);                                                              \
        RNE__AVX512_MAC(l1, b, xl_);                                                              \
        if (g > 1) {                                                                              \
            RNE__AVX512_PAIRS(64, R1, a, b);                                                      \
            RNE__AVX512_MAC(h2, a, xh_);                                                          \
            RNE__AVX512_MAC(l2, a, xl_);                                                          \
            RNE__AVX512_MAC(h3, b, xh_);                                                          \
            RNE__AVX512_MAC(l3, b, xl_);                                                          \
        }                                                                                         \
    } while (0)
    if (k % 2 != 0) {
        const __m512i xx = _mm512_set1_epi32((int32_t)(uint16_t)x[k - 1]);
        wp += (k - 1) * row;
        RNE__AVX512_SPLIT(0, xx);
        wp = w + j * es;
    }
    for (p = 0; p + 2 <= k; p += 2, wp += 2 * row) {
        int32_t pair;
        memcpy(&pair, x + p, sizeof pair);
        {
            const __m512i xx = _mm512_set1_epi32(pair);
            RNE__AVX512_SPLIT(row, xx);
        }
    }
#undef RNE__AVX512_SPLIT
    rne__avx512_put64(acc + j, add, h0, h1, l0, l1);
    if (g > 1)
        rne__avx512_put64(acc + j + 32, add, h2, h3, l2, l3);
}
#undef RNE__AVX512_PAIRS

#if defined(__AVX512VNNI__)
/* int8 weights with VNNI's vpdpbusd, which adds four products of an unsigned byte and a signed byte
 * into each int32 lane: four rows a step, with no widening of the weights to int16. x is split as
 * above, x = 256 xh + xl with xh = x >> 8 in [-128, 127] and xl = x & 255 in [0, 255]:
 *   L = sum xl w: vpdpbusd(xl as the unsigned bytes, w as the signed ones);
 *   H = sum xh (w + 128): vpdpbusd(w ^ 0x80 = w + 128 as the unsigned bytes, xh as the signed);
 *   sum x w = 256 (H - 128 S) + L, S = sum xh (one integer per call, the same for every column).
 * All of it modulo 2^32 (vpdpbusd adds without saturation; C in uint32_t): every column's sum x w
 * fits int32 (acc32: proved at load; a chunk of RNE__Q_CHUNK rows: at most 256 * 32768 * 128 =
 * 2^30), so the residue is that sum, exactly; the same integers as the scalar code, which wraps
 * modulo 2^32 as well where weights changed after load.
 * The four rows' bytes at a column are made one dword by vpunpck{l,h}bw then vpunpck{l,h}wd:
 * register D_i holds columns 16 L + 4 i .. 16 L + 4 i + 3 in its 128-bit lane L; a 4 x 4
 * transpose of the lanes (vshufi64x2) puts them back in column order. The last k % 4 rows take
 * x = 0 (the last row's weights, times 0) for the rows past k, which adds 0 to L, H and S. */

/* the int32 sums H_i, L_i (i = 0 .. 3) combined as 256 (H - 128 S) + L modulo 2^32 (corr:
 * 2^15 S), for the 4 x 16 columns of one group, stored in column order at o */
static RNE__Q_INLINE __m512i rne__avx512_bus_val(__m512i h, __m512i l, __m512i corr)
{
    return _mm512_add_epi32(_mm512_sub_epi32(_mm512_slli_epi32(h, 8), corr), l);
}

static RNE__Q_INLINE void rne__avx512_bus_store(int32_t *o, __m512i r0, __m512i r1, __m512i r2,
                                                __m512i r3)
{
    const __m512i t0 = _mm512_shuffle_i64x2(r0, r1, 0x44);   /* D0.l0 D0.l1 D1.l0 D1.l1 */
    const __m512i t1 = _mm512_shuffle_i64x2(r2, r3, 0x44);   /* D2.l0 D2.l1 D3.l0 D3.l1 */
    const __m512i t2 = _mm512_shuffle_i64x2(r0, r1, 0xEE);   /* D0.l2 D0.l3 D1.l2 D1.l3 */
    const __m512i t3 = _mm512_shuffle_i64x2(r2, r3, 0xEE);
    _mm512_storeu_si512((void *)o, _mm512_shuffle_i64x2(t0, t1, 0x88));          /* 0-15 */
    _mm512_storeu_si512((void *)(o + 16), _mm512_shuffle_i64x2(t0, t1, 0xDD));   /* 16-31 */
    _mm512_storeu_si512((void *)(o + 32), _mm512_shuffle_i64x2(t2, t3, 0x88));   /* 32-47 */
    _mm512_storeu_si512((void *)(o + 48), _mm512_shuffle_i64x2(t2, t3, 0xDD));   /* 48-63 */
}

/* Rows p .. p+3 (at wp, wp + R1, wp + R2, wp + R3) at the 64 columns from byte OFF on: the dwords
 * D0 .. D3 of their bytes, added into L0 .. L3 (times xl) and H0 .. H3 (the weights + 128, times
 * xh) */
#define RNE__AVX512_BUS_ADD(D, L, H)                                                              \
    L = _mm512_dpbusd_epi32(L, xl_, D);                                                           \
    H = _mm512_dpbusd_epi32(H, _mm512_xor_si512(D, b80), xh_)
#define RNE__AVX512_BUS(OFF, R1, R2, R3, L0, L1, L2, L3, H0, H1, H2, H3)                          \
    do {                                                                                          \
        const __m512i r0_ = _mm512_loadu_si512((const void *)(wp + (OFF)));                       \
        const __m512i r1_ = _mm512_loadu_si512((const void *)(wp + (R1) + (OFF)));                \
        const __m512i r2_ = _mm512_loadu_si512((const void *)(wp + (R2) + (OFF)));                \
        const __m512i r3_ = _mm512_loadu_si512((const void *)(wp + (R3) + (OFF)));                \
        const __m512i alo_ = _mm512_unpacklo_epi8(r0_, r1_);                                      \
        const __m512i ahi_ = _mm512_unpackhi_epi8(r0_, r1_);                                      \
        const __m512i blo_ = _mm512_unpacklo_epi8(r2_, r3_);                                      \
        const __m512i bhi_ = _mm512_unpackhi_epi8(r2_, r3_);                                      \
        RNE__AVX512_BUS_ADD(_mm512_unpacklo_epi16(alo_, blo_), L0, H0);                           \
        RNE__AVX512_BUS_ADD(_mm512_unpackhi_epi16(alo_, blo_), L1, H1);                           \
        RNE__AVX512_BUS_ADD(_mm512_unpacklo_epi16(ahi_, bhi_), L2, H2);                           \
        RNE__AVX512_BUS_ADD(_mm512_unpackhi_epi16(ahi_, bhi_), L3, H3);                           \
    } while (0)
#define RNE__AVX512_BUS_ROWS(R1, R2, R3)                                                          \
    do {                                                                                          \
        RNE__AVX512_BUS(0, R1, R2, R3, l0, l1, l2, l3, h0, h1, h2, h3);                           \
        if (g > 1)                                                                                \
            RNE__AVX512_BUS(64, R1, R2, R3, l4, l5, l6, l7, h4, h5, h6, h7);                      \
    } while (0)

/* the bytes lo of x[0 .. 3] (xh: their high bytes) as one uint32, x[0] in the low byte */
static RNE__Q_INLINE uint32_t rne__bytes4(uint64_t v)
{
    return (uint32_t)((v & 0xFFu) | ((v >> 8) & 0xFF00u) | ((v >> 16) & 0xFF0000u) |
                      ((v >> 24) & 0xFF000000u));
}

/* out[0 .. 64 g) = the int32 column sums of int8 columns j .. j + 64 g (g = 1 or 2) over rows
 * 0 .. k-1, each exact where it fits int32 (above). g: a constant of an instantiation. */
static RNE__Q_INLINE void rne__avx512_bus(int32_t *out, const int16_t *x, size_t k,
                                          const uint8_t *w, size_t ldw, size_t j, size_t g)
{
    const uint8_t *wp = w + j;
    const __m512i b80 = _mm512_set1_epi8((char)0x80), z = _mm512_setzero_si512();
    __m512i l0 = z, l1 = z, l2 = z, l3 = z, h0 = z, h1 = z, h2 = z, h3 = z;
    __m512i l4 = z, l5 = z, l6 = z, l7 = z, h4 = z, h5 = z, h6 = z, h7 = z;
    int64_t sh = 0;         /* S = sum xh */
    size_t p, i;
    for (p = 0; p + 4 <= k; p += 4, wp += 4 * ldw) {
        uint64_t v;
        memcpy(&v, x + p, sizeof v);                /* x[p] in the low 16 bits (little-endian) */
        {
            const __m512i xl_ = _mm512_set1_epi32((int)rne__bytes4(v));
            const __m512i xh_ = _mm512_set1_epi32((int)rne__bytes4(v >> 8));
            RNE__AVX512_BUS_ROWS(ldw, 2 * ldw, 3 * ldw);
        }
        for (i = 0; i < 4; i++)
            sh += x[p + i] >> 8;
    }
    if (p < k) {            /* 1 to 3 rows left: the rows past k repeat row k - 1, with x = 0 */
        const size_t r = k - p, last = (r - 1) * ldw;
        uint16_t xq[4] = { 0, 0, 0, 0 };
        uint64_t v;
        for (i = 0; i < r; i++) {
            xq[i] = (uint16_t)x[p + i];
            sh += x[p + i] >> 8;
        }
        v = (uint64_t)xq[0] | (uint64_t)xq[1] << 16 | (uint64_t)xq[2] << 32 | (uint64_t)xq[3] << 48;
        {
            const __m512i xl_ = _mm512_set1_epi32((int)rne__bytes4(v));
            const __m512i xh_ = _mm512_set1_epi32((int)rne__bytes4(v >> 8));
            const size_t r1 = r > 1 ? ldw : last, r2 = r > 2 ? 2 * ldw : last;
            RNE__AVX512_BUS_ROWS(r1, r2, last);
        }
    }
    {
        const __m512i corr = _mm512_set1_epi32((int)(uint32_t)((uint64_t)sh << 15));  /* 128 S */
        rne__avx512_bus_store(out, rne__avx512_bus_val(h0, l0, corr),
                              rne__avx512_bus_val(h1, l1, corr), rne__avx512_bus_val(h2, l2, corr),
                              rne__avx512_bus_val(h3, l3, corr));
        if (g > 1)
            rne__avx512_bus_store(out + 64, rne__avx512_bus_val(h4, l4, corr),
                                  rne__avx512_bus_val(h5, l5, corr),
                                  rne__avx512_bus_val(h6, l6, corr),
                                  rne__avx512_bus_val(h7, l7, corr));
    }
}
#undef RNE__AVX512_BUS_ROWS
#undef RNE__AVX512_BUS
#undef RNE__AVX512_BUS_ADD

static void rne__avx512_bus_128(int32_t *o, const int16_t *x, size_t k, const uint8_t *w,
                                size_t ldw, size_t j)
{
    rne__avx512_bus(o, x, k, w, ldw, j, 2);
}

static void rne__avx512_bus_64(int32_t *o, const int16_t *x, size_t k, const uint8_t *w,
                               size_t ldw, size_t j)
{
    rne__avx512_bus(o, x, k, w, ldw, j, 1);
}
#endif /* __AVX512VNNI__ */

#define RNE__AVX512_SUM(NAME, S8, G)                                                              \
    static void NAME(int32_t *o, const int16_t *x, size_t k, const uint8_t *w, size_t ldw,        \
                     size_t j)                                                                    \
    {                                                                                             \
        rne__avx512_sum32(o, x, k, w, ldw, j, S8, G);                                             \
    }
RNE__AVX512_SUM(rne__avx512_s8_128, 1, 4)
RNE__AVX512_SUM(rne__avx512_s8_64, 1, 2)
RNE__AVX512_SUM(rne__avx512_s8_32, 1, 1)
RNE__AVX512_SUM(rne__avx512_s16_128, 0, 4)
RNE__AVX512_SUM(rne__avx512_s16_64, 0, 2)
RNE__AVX512_SUM(rne__avx512_s16_32, 0, 1)
#undef RNE__AVX512_SUM

static void rne__avx512_split_64(int64_t *acc, int add, const int16_t *x, size_t k,
                                 const uint8_t *w, size_t ldw, size_t j)
{
    rne__avx512_split_s16(acc, add, x, k, w, ldw, j, 2);
}

static void rne__avx512_split_32(int64_t *acc, int add, const int16_t *x, size_t k,
                                 const uint8_t *w, size_t ldw, size_t j)
{
    rne__avx512_split_s16(acc, add, x, k, w, ldw, j, 1);
}

#undef RNE__AVX512_MAC

#endif /* RNE_QVEC_AVX512_H */
