/*
 * rtneural_compare.cpp - rnnedge's C step against RTNeural's compile-time API, in one process,
 * on the same weights and inputs (issue 17). Built and run by tools/rtneural_compare.py, once per
 * case, with -DCELL_GRU or not, -DIN=features, -DHID=hidden, -DRTNEURAL_USE_EIGEN=1.
 *
 *   rtneural_compare F32.rne INT8.rne WEIGHTS.bin BLOCK ROUNDS
 *
 * WEIGHTS.bin: the ONNX layer's W [G*H][IN], R [G*H][H], B [2*G*H] as float32 (G = 4 for an LSTM
 * in ONNX's gate order i, o, f, c; 3 for a GRU, z, r, h, linear_before_reset = 1), the weights the
 * two blobs were converted from. Checks first that rnnedge (f32) and RTNeural give the same
 * outputs over 256 steps from zero state (the largest |difference| is printed), then times
 * ROUNDS rounds of BLOCK steps of each engine in turn (interleaved, so that both see the same
 * machine state), one step per call at batch 1, and prints one JSON object: per engine the
 * median and the best round in ns per step. This is a tool, not the library: it allocates freely.
 */
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include <RTNeural/RTNeural.h>

#include "rnnedge.h"

#ifndef IN
#error "define IN (the input features)"
#endif
#ifndef HID
#error "define HID (the hidden size)"
#endif

#ifdef CELL_GRU
static const int GATES = 3;
using Layer = RTNeural::GRULayerT<float, IN, HID>;
static const char *CELL = "gru";
#else
static const int GATES = 4;
using Layer = RTNeural::LSTMLayerT<float, IN, HID>;
static const char *CELL = "lstm";
#endif

static const int N_INPUTS = 64; /* input vectors cycled through */

[[noreturn]] static void die(const char *what, const char *detail)
{
    std::fprintf(stderr, "rtneural_compare: %s: %s\n", what, detail);
    std::exit(1);
}

static std::vector<char> read_file(const char *path)
{
    std::ifstream f(path, std::ios::binary);
    if (!f)
        die(path, "cannot open");
    return std::vector<char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

/* The ONNX weights into RTNeural's Keras layout: kernel [IN][G*H], recurrent [H][G*H]; Keras's
 * LSTM gate order is i, f, c, o (ONNX: i, o, f, c); a GRU's z, r, h is the same in both. */
static void set_weights(Layer &layer, const float *W, const float *R, const float *B)
{
#ifdef CELL_GRU
    const int order[3] = {0, 1, 2};
#else
    const int order[4] = {0, 2, 3, 1}; /* Keras block k is ONNX block order[k] */
#endif
    std::vector<std::vector<float>> w(IN, std::vector<float>(GATES * HID));
    std::vector<std::vector<float>> u(HID, std::vector<float>(GATES * HID));
    for (int g = 0; g < GATES; g++)
        for (int k = 0; k < HID; k++) {
            int row = order[g] * HID + k, col = g * HID + k;
            for (int i = 0; i < IN; i++)
                w[i][col] = W[row * IN + i];
            for (int i = 0; i < HID; i++)
                u[i][col] = R[row * HID + i];
        }
    layer.setWVals(w);
    layer.setUVals(u);
#ifdef CELL_GRU
    std::vector<std::vector<float>> b(2, std::vector<float>(GATES * HID));
    for (int j = 0; j < GATES * HID; j++) {
        b[0][j] = B[j];
        b[1][j] = B[GATES * HID + j];
    }
    layer.setBVals(b);
#else
    std::vector<float> b(GATES * HID);
    for (int g = 0; g < GATES; g++)
        for (int k = 0; k < HID; k++) {
            int row = order[g] * HID + k;
            b[g * HID + k] = B[row] + B[GATES * HID + row]; /* Wb + Rb: RTNeural has one bias */
        }
    layer.setBVals(b);
#endif
}

struct Engine {
    std::vector<char> blob;
    rne_model model;
    rne_stream stream;
    rne_io in, out;
    void *state = nullptr, *scratch = nullptr;

    explicit Engine(const char *path)
    {
        blob = read_file(path);
        /* a blob asks for its own alignment, up to 4096: copy it to a buffer aligned to that */
        void *aligned = std::aligned_alloc(4096, (blob.size() + 4095) / 4096 * 4096);
        if (aligned == nullptr)
            die(path, "out of memory");
        std::memcpy(aligned, blob.data(), blob.size());
        int rc = rne_model_load(aligned, blob.size(), &model);
        if (rc != RNE_OK)
            die(path, rne_strerror(rc));
        rne_model_io(&model, RNE_V_INPUT, &in);
        rne_model_io(&model, RNE_V_OUTPUT, &out);
        if (in.features != IN || out.features != HID)
            die(path, "not a model of this case's sizes");
        size_t ss = rne_state_size(&model, 1), sc = rne_scratch_size(&model, 1, 1);
        state = std::aligned_alloc(64, (ss + 63) / 64 * 64 + 64);
        scratch = std::aligned_alloc(64, (sc + 63) / 64 * 64 + 64);
        rc = rne_stream_init(&stream, &model, 1, state, ss, scratch, sc);
        if (rc != RNE_OK)
            die(path, rne_strerror(rc));
    }
};

static double now_ns()
{
    return (double)std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

int main(int argc, char **argv)
{
    if (argc != 6)
        die("usage", "rtneural_compare F32.rne INT8.rne WEIGHTS.bin BLOCK ROUNDS");
    long block = std::atol(argv[4]), rounds = std::atol(argv[5]);
    if (block < 1 || rounds < 1)
        die("usage", "BLOCK and ROUNDS must be >= 1");
    std::vector<char> wbytes = read_file(argv[3]);
    size_t nw = (size_t)GATES * HID * IN, nr = (size_t)GATES * HID * HID, nb = 2 * (size_t)GATES * HID;
    if (wbytes.size() != (nw + nr + nb) * sizeof(float))
        die(argv[3], "not the weights of this case's sizes");
    const float *W = reinterpret_cast<const float *>(wbytes.data());

    Engine f32(argv[1]), i8(argv[2]);
    if (f32.in.dtype != RNE_DT_F32 || i8.in.dtype != RNE_DT_S16)
        die(argv[1], "expected a float32 blob, then an integer one");
    auto owned = std::make_unique<Layer>(); /* large at H = 128: not on the stack */
    Layer &layer = *owned;
    set_weights(layer, W, W + nw, W + nw + nr);
    layer.reset();

    /* 64 input vectors in [-1, 1), and their int16 form at the integer blob's input scale */
    std::vector<float> xs((size_t)N_INPUTS * IN);
    std::vector<int16_t> xq(xs.size());
    uint32_t lcg = 12345u;
    for (float &v : xs) {
        lcg = lcg * 1664525u + 1013904223u;
        v = (float)(lcg >> 8) / 8388608.0f - 1.0f;
    }
    rne_quantize_s16(xs.data(), xs.size(), i8.in.scale, xq.data());
    std::vector<Eigen::Matrix<float, IN, 1>> ins(N_INPUTS);
    for (int n = 0; n < N_INPUTS; n++)
        for (int i = 0; i < IN; i++)
            ins[n](i) = xs[(size_t)n * IN + i];

    /* the same outputs first: 256 steps from zero state */
    alignas(64) float y[HID], y8[HID];
    alignas(64) int16_t yq[HID], xq1[IN];
    double max_diff = 0.0, max_diff_int8 = 0.0, y_range = 0.0;
    for (int t = 0; t < 256; t++) {
        const float *x = &xs[(size_t)(t % N_INPUTS) * IN];
        if (rne_step(&f32.stream, x, y) != RNE_OK)
            die(argv[1], "rne_step failed");
        if (rne_step_float(&i8.stream, x, i8.in.scale, xq1, yq, i8.out.scale, y8) != RNE_OK)
            die(argv[2], "rne_step_float failed");
        layer.forward(ins[t % N_INPUTS]);
        for (int k = 0; k < HID; k++) {
            max_diff = std::max(max_diff, (double)std::fabs(y[k] - layer.outs(k)));
            max_diff_int8 = std::max(max_diff_int8, (double)std::fabs(y8[k] - layer.outs(k)));
            y_range = std::max(y_range, (double)std::fabs(layer.outs(k)));
        }
    }
    rne_stream_reset(&f32.stream);
    rne_stream_reset(&i8.stream);
    layer.reset();

    /* interleaved rounds: BLOCK steps of each engine in turn */
    std::vector<double> t_f32, t_int8, t_rt;
    float sink = 0.0f;
    for (long r = 0; r < rounds; r++) {
        double t0 = now_ns();
        for (long t = 0; t < block; t++)
            rne_step(&f32.stream, &xs[(size_t)(t % N_INPUTS) * IN], y);
        double t1 = now_ns();
        for (long t = 0; t < block; t++)
            rne_step(&i8.stream, &xq[(size_t)(t % N_INPUTS) * IN], yq);
        double t2 = now_ns();
        for (long t = 0; t < block; t++)
            layer.forward(ins[t % N_INPUTS]);
        double t3 = now_ns();
        sink += y[0] + (float)yq[0] + layer.outs(0);
        t_f32.push_back((t1 - t0) / (double)block);
        t_int8.push_back((t2 - t1) / (double)block);
        t_rt.push_back((t3 - t2) / (double)block);
    }
    auto median = [](std::vector<double> v) {
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
    };
    auto best = [](const std::vector<double> &v) { return *std::min_element(v.begin(), v.end()); };
    std::printf("{\"cell\": \"%s\", \"features\": %d, \"hidden\": %d, \"block\": %ld, \"rounds\": %ld, "
                "\"rnnedge_f32_ns\": %.1f, \"rnnedge_int8_ns\": %.1f, \"rtneural_ns\": %.1f, "
                "\"rnnedge_f32_best_ns\": %.1f, \"rnnedge_int8_best_ns\": %.1f, \"rtneural_best_ns\": %.1f, "
                "\"max_abs_diff_f32\": %.3g, \"max_abs_diff_int8\": %.3g, \"output_max_abs\": %.3g, "
                "\"sink\": %.3g}\n",
                CELL, IN, HID, block, rounds, median(t_f32), median(t_int8), median(t_rt), best(t_f32),
                best(t_int8), best(t_rt), max_diff, max_diff_int8, y_range, (double)sink);
    return 0;
}
