/*
 * rnnedge.h - the one public header of the rnnedge C library (C99, no malloc, no globals).
 *
 * A model is a .rne blob (docs/format.md), used in place:
 *   rne_header (64 B) | metadata JSON | rne_node[n] (160 B each) | rne_tensor[m] (64 B each)
 *   | rne_value[v] (48 B each) | tensor data, each tensor aligned to header.alignment
 *   | CRC-32 of everything before it.
 * Format version 2 is a static dataflow graph (docs/graph.md): nodes in run order over values
 * (per-timestep tensors: the input, the output, temporaries in one arena, states).
 * Little-endian; every offset counted from the start of the blob; the blob itself must start at a
 * multiple of header.alignment. rne_model_load() proves every offset, size, shape and parameter
 * once and copies what the step path needs into rne_model; the step path then reads only those
 * copies and the tensor data, and checks nothing but the stream's arguments and its model's
 * identity (RNE_EMODEL).
 *
 * Memory: the caller owns all of it. rne_model borrows the blob's tensor data (zero copy of the
 * weights) and holds a copy of each node and value (RNE_MAX_NODES, RNE_MAX_VALUES: build options); a stream
 * borrows a state buffer (rne_state_size) and a scratch buffer (rne_scratch_size); rne_run takes
 * its own scratch for T steps. Many streams may share one model; a stream must not be used from
 * two threads at once.
 *
 *   rne_model m;  if (rne_model_load(blob, size, &m) != RNE_OK) ...
 *   rne_stream s; rne_stream_init(&s, &m, 1, state, rne_state_size(&m, 1),
 *                                 scratch, rne_scratch_size(&m, 1, 1));
 *   for each frame: rne_step(&s, x, y);
 *
 * The region between the cdef markers is read by rnnedge/_build.py as the cffi cdef: keep it
 * free of preprocessor conditionals and expressions in #defines.
 */
#ifndef RNNEDGE_H
#define RNNEDGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Nodes a blob may have, and the capacity of rne_model's per-node array (rne_model.nodes): a
 * build-time option. Firmware that loads small models sets it lower (-DRNE_MAX_NODES=8 when
 * compiling the library AND the code that includes this header: the two must agree, see below),
 * so that rne_model takes less RAM; rne_model_load refuses a blob with more nodes (RNE_EHEADER).
 * RNE_MAX_VALUES likewise bounds the value table (rne_model.values). */
#ifndef RNE_MAX_NODES
#define RNE_MAX_NODES 256
#endif
#ifndef RNE_MAX_VALUES
#define RNE_MAX_VALUES 1024
#endif

/* rne_model_load links under a name that carries RNE_MAX_NODES and RNE_MAX_VALUES
 * (rne_model_load_mn256_mv1024 by default; give both as plain integers), so that code compiled
 * with another capacity than the library fails to link instead of passing an rne_model of the
 * wrong size. */
#define RNE__CAT2(a, b) a##b
#define RNE__CAT(a, b) RNE__CAT2(a, b)
#define RNE__CAP(name) RNE__CAT(RNE__CAT(RNE__CAT(name, RNE_MAX_NODES), _mv), RNE_MAX_VALUES)
#define rne_model_load RNE__CAP(rne_model_load_mn)
#define rne_model_load_where RNE__CAP(rne_model_load_where_mn)

/* cdef-begin */
#define RNE_FORMAT_VERSION 2
#define RNE_MAX_TENSORS 4096
#define RNE_MAX_FEATURES 1048576   /* 2^20: the most features (elements per step) of any value */
#define RNE_NONE 0xFFFF            /* rne_node.in / out: no value */

/* Status codes: rne_strerror(code) explains each. */
enum {
    RNE_OK = 0,
    RNE_EARG = 1,         /* a NULL pointer, zero batch, or a bad argument */
    RNE_EMAGIC = 2,       /* not an rnnedge blob: bad magic */
    RNE_EVERSION = 3,     /* blob format version newer than this library reads */
    RNE_ETRUNC = 4,       /* blob shorter than its header or file_size says */
    RNE_ECRC = 5,         /* checksum mismatch: the blob is corrupt */
    RNE_EALIGN = 6,       /* blob, table or tensor not aligned as required */
    RNE_EHEADER = 7,      /* header field out of range, or a reserved field set */
    RNE_ETENSOR = 8,      /* tensor record invalid: dtype, shape, offset or size */
    RNE_ELAYER = 9,       /* layer record invalid: op, flags, activation, params */
    RNE_ESHAPE = 10,      /* layer tensors or feature sizes do not fit together */
    RNE_ESTREAM = 11,     /* model reads the sequence backwards: it cannot be stepped */
    RNE_ESIZE = 12,       /* a caller buffer is too small or misaligned */
    RNE_EMODEL = 13,      /* the stream's model was re-loaded (or failed to load) since
                             rne_stream_init: initialize the stream again */
    RNE_EINPUT = 14       /* an input id (GATHER) is out of range: nothing was written */
};

/* Node ops (rne_node.op; docs/graph.md section 2). */
enum {
    RNE_OP_DENSE = 1,
    RNE_OP_ACT = 2,
    RNE_OP_LSTM = 3,
    RNE_OP_GRU = 4,
    RNE_OP_RNN = 5,
    RNE_OP_TAKE_LAST = 6,
    RNE_OP_SLICE = 7,
    RNE_OP_LAYERNORM = 8,
    RNE_OP_BINARY = 9,
    RNE_OP_CONCAT = 10,
    RNE_OP_TRANSPOSE = 11,
    RNE_OP_COPY = 12,
    RNE_OP_GATHER = 13,
    RNE_OP_REDUCE = 14,
    RNE_OP_CONV = 15,
    RNE_OP_CONV_T = 16
};

/* BINARY kinds (rne_node.param[0]) and REDUCE kinds (param[0]). */
enum { RNE_BIN_ADD = 0, RNE_BIN_SUB = 1, RNE_BIN_MUL = 2, RNE_BIN_DIV = 3, RNE_BIN_MIN = 4,
       RNE_BIN_MAX = 5, RNE_BIN_POW = 6, RNE_BIN_HYPOT = 7, RNE_BIN_LOGHYPOT = 8 };
enum { RNE_RED_SUM = 0, RNE_RED_MEAN = 1, RNE_RED_MAX = 2, RNE_RED_MIN = 3 };

/* Value kinds (rne_value.kind) and flags (rne_value.flags). */
enum { RNE_V_TEMP = 0, RNE_V_INPUT = 1, RNE_V_OUTPUT = 2, RNE_V_STATE = 3 };
enum { RNE_VF_LAST = 1 };

/* Number formats (rne_node.fmt). A model is f32 throughout, or integer throughout (s16 and s8
 * layers may mix; docs/quantization.md). An integer model takes and gives int16 values at the
 * scales in the blob metadata's "qio" key, and computes in integers only. */
enum { RNE_FMT_F32 = 0, RNE_FMT_S16 = 1, RNE_FMT_S8 = 2 };

/* Tensor dtypes (rne_tensor.dtype). */
enum { RNE_DT_F32 = 0, RNE_DT_S8 = 1, RNE_DT_S16 = 2, RNE_DT_S32 = 3, RNE_DT_S64 = 4, RNE_DT_U16 = 5 };

/* Layer flags (rne_node.flags). */
enum {
    RNE_LF_REVERSE = 1,
    RNE_LF_BIDIR = 2,
    RNE_LF_INPUT_FORGET = 4,
    RNE_LF_LINEAR_BEFORE_RESET = 8,
    RNE_LF_CLIP = 16,
    RNE_LF_INNER = 32   /* a recurrence over the first per-step axis (param[0] elements) of each row */
};

/* Activation kinds (rne_node.act). */
enum {
    RNE_ACT_IDENTITY = 0,
    RNE_ACT_SIGMOID = 1,
    RNE_ACT_TANH = 2,
    RNE_ACT_RELU = 3,
    RNE_ACT_LEAKYRELU = 4,
    RNE_ACT_THRESHOLDEDRELU = 5,
    RNE_ACT_SCALEDTANH = 6,
    RNE_ACT_HARDSIGMOID = 7,
    RNE_ACT_ELU = 8,
    RNE_ACT_SOFTSIGN = 9,
    RNE_ACT_SOFTPLUS = 10,
    RNE_ACT_AFFINE = 11,
    RNE_ACT_CLIP = 12,
    RNE_ACT_SOFTMAX = 13,
    RNE_ACT_LOGSOFTMAX = 14,
    /* elementwise kinds of format version 2's graphs (docs/graph.md); POW: alpha = exponent */
    RNE_ACT_ABS = 15,
    RNE_ACT_NEG = 16,
    RNE_ACT_SQRT = 17,
    RNE_ACT_RECIPROCAL = 18,
    RNE_ACT_EXP = 19,
    RNE_ACT_LOG = 20,
    RNE_ACT_ERF = 21,
    RNE_ACT_POW = 22
};

/* Tensor roles (index into rne_node.tensor). Q and LUT belong to the integer formats: a layer's
 * int32 parameters (multipliers, shifts, clamps) and an activation layer's int16[257] table. */
enum {
    RNE_T_W = 0, RNE_T_R = 1, RNE_T_B = 2, RNE_T_P = 3, RNE_T_H0 = 4, RNE_T_C0 = 5,
    RNE_T_Q = 6, RNE_T_LUT = 7
};

/* Where rne_model_load_where stopped (rne_fault): the part of the blob at fault ... */
enum {
    RNE_SEC_NONE = 0,     /* no fault (RNE_OK) */
    RNE_SEC_ARG = 1,      /* the call's arguments or the host */
    RNE_SEC_HEADER = 2,   /* the 64-byte header, the blob's size and address, the table offsets */
    RNE_SEC_META = 3,     /* where the metadata lies (meta_off, meta_size; C never reads it) */
    RNE_SEC_TENSOR = 4,   /* a tensor record (rne_fault.tensor) in the tensor table */
    RNE_SEC_LAYER = 5,    /* a node record (rne_fault.layer), its tensors' roles, its values */
    RNE_SEC_DATA = 6,     /* a value in an integer node's tensor data (rne_fault.index) */
    RNE_SEC_CRC = 7,      /* the checksum */
    RNE_SEC_VALUE = 8     /* a value record (rne_fault.value) in the value table */
};

/* ... and the field at fault (rne_fault_field_name gives its name, as docs/format.md spells it). */
enum {
    RNE_FF_NONE = 0, RNE_FF_BLOB = 1, RNE_FF_MODEL = 2, RNE_FF_HOST = 3, RNE_FF_SIZE = 4,
    RNE_FF_MAGIC = 5, RNE_FF_VERSION = 6, RNE_FF_HEADER_SIZE = 7, RNE_FF_FLAGS = 8,
    RNE_FF_RESERVED = 9, RNE_FF_ALIGNMENT = 10, RNE_FF_FILE_SIZE = 11, RNE_FF_N_NODES = 12,
    RNE_FF_N_TENSORS = 13, RNE_FF_CRC = 14, RNE_FF_META = 15, RNE_FF_NODE_OFF = 16,
    RNE_FF_TENSOR_OFF = 17, RNE_FF_NAME = 18, RNE_FF_DTYPE = 19, RNE_FF_NDIM = 20,
    RNE_FF_SHAPE = 21, RNE_FF_NBYTES = 22, RNE_FF_OFFSET = 23, RNE_FF_SCALE = 24,
    RNE_FF_ZERO_POINT = 25, RNE_FF_OP = 26, RNE_FF_FMT = 27, RNE_FF_CLIP = 28, RNE_FF_ACT = 29,
    RNE_FF_ALPHA = 30, RNE_FF_BETA = 31, RNE_FF_IN_FEATURES = 32, RNE_FF_OUT_FEATURES = 33,
    RNE_FF_HIDDEN = 34, RNE_FF_PARAM = 35, RNE_FF_TENSOR = 36, RNE_FF_Q_SLOT = 37,
    RNE_FF_MULTIPLIER = 38, RNE_FF_ACC32 = 39, RNE_FF_WEIGHT = 40, RNE_FF_N_VALUES = 41,
    RNE_FF_VALUE_OFF = 42, RNE_FF_ARENA = 43, RNE_FF_KIND = 44, RNE_FF_UPDATE = 45,
    RNE_FF_INIT = 46, RNE_FF_IN = 47, RNE_FF_OUT = 48, RNE_FF_LIFETIME = 49
};

/* Where the load stopped: filled by rne_model_load_where on every return (on RNE_OK: section
 * RNE_SEC_NONE, the rest -1 / RNE_FF_NONE). Set from constants, nothing built at run time. */
typedef struct rne_fault {
    int32_t  layer;       /* node index, -1 if none */
    int32_t  tensor;      /* tensor index, -1 if none */
    int32_t  index;       /* detail, -1 if none: the element of the tensor's data (flat, row-major:
                             a q slot, a multiplier, a weight) for RNE_SEC_DATA; the dimension for
                             a shape; the other tensor (value) for a duplicate name or an overlap;
                             the flag, slot, parameter or in/out number where a field has several */
    int32_t  value;       /* value index, -1 if none */
    uint8_t  section;     /* RNE_SEC_* */
    uint8_t  role;        /* the tensor's role in the layer (RNE_T_*), 255 if none */
    uint16_t field;       /* RNE_FF_* */
} rne_fault;

/* On-blob records, read in place (docs/format.md has a comment on every field). */
typedef struct rne_header {
    char     magic[4];
    uint32_t version;
    uint32_t header_size;
    uint32_t flags;
    uint32_t alignment;
    uint32_t file_size;
    uint32_t meta_off;
    uint32_t meta_size;
    uint32_t node_off;
    uint32_t n_nodes;
    uint32_t tensor_off;
    uint32_t n_tensors;
    uint32_t value_off;
    uint32_t n_values;
    uint32_t arena_row;
    uint32_t reserved;
} rne_header;

typedef struct rne_value {
    uint8_t  kind;
    uint8_t  dtype;
    uint8_t  ndim;
    uint8_t  flags;
    uint32_t shape[4];
    uint32_t offset;
    int32_t  update;
    int32_t  init;
    float    scale;
    uint32_t reserved[3];
} rne_value;

typedef struct rne_node {
    uint16_t op;
    uint16_t fmt;
    uint32_t flags;
    uint32_t hidden;
    float    clip;
    int32_t  param[8];
    uint8_t  act[2][3];
    uint8_t  pad[2];
    float    alpha[2][3];
    float    beta[2][3];
    int32_t  tensor[8];
    uint16_t in[4];
    uint16_t out[4];
    uint32_t reserved[2];
} rne_node;

typedef struct rne_tensor {
    char     name[24];
    uint8_t  dtype;
    uint8_t  ndim;
    uint16_t reserved0;
    uint32_t shape[4];
    uint32_t offset;
    uint32_t nbytes;
    float    scale;
    int32_t  zero_point;
    uint32_t reserved1;
} rne_tensor;

/* One node as rne_model_load proved it, copied out of the blob (the step path reads only this
 * and the tensor data it points to): the record's fields the kernels use, each role's tensor
 * data resolved to a pointer into the blob, its values, and an integer node's small q-tensor
 * values that decide a shift, a clamp or a loop. A row-wise node (DENSE, LAYERNORM, ACT, SLICE
 * along the last axis) sees each row of its input as `lead` rows of in_features (the last
 * axis); the others see one row of in_features (every element of in[0]). */
typedef struct rne_model_layer {
    const void *data[8];            /* tensor data by role (RNE_T_*), NULL if absent */
    uint16_t op;
    uint16_t fmt;
    uint32_t flags;
    uint32_t in_features;           /* a kernel row of in[0] (its last axis, or all of it) */
    uint32_t out_features;          /* a kernel row of out[0] */
    uint32_t lead;                  /* kernel rows per value row (1 but for row-wise nodes) */
    uint32_t hidden;
    int32_t  param[8];
    uint16_t in[4];                 /* value indices, RNE_NONE if absent */
    uint16_t out[4];
    float    clip;
    uint8_t  act[2][3];
    uint8_t  qshift[2][3];          /* integer cell: each direction's activation shift (q slot
                                       9 + 3a), 0 if unused */
    float    alpha[2][3];
    float    beta[2][3];
    int32_t  q[8];                  /* integer layer: its q tensor's slots 0..7 (a cell's of
                                       direction 0; slots 0..4 are equal in both) */
    uint32_t wshape[4];             /* the role-0 tensor's shape (a BINARY's constant operand) */
    uint32_t wndim;                 /*   ... and rank; 0 if the node has none */
    uint32_t skip;                  /* the record's reserved[0]: the first steps of a stream the
                                       node skips (docs/graph.md section 6), 0 for most */
} rne_model_layer;

/* One value as rne_model_load proved it (docs/graph.md section 1). */
typedef struct rne_model_value {
    const void *init;               /* STATE: its initial value [features] in the blob, or NULL
                                       (zeros) */
    uint8_t  kind;                  /* RNE_V_* */
    uint8_t  dtype;                 /* RNE_DT_F32, RNE_DT_S16 or RNE_DT_S32 */
    uint8_t  flags;                 /* RNE_VF_LAST */
    uint8_t  ndim;
    uint32_t shape[4];
    uint32_t features;              /* elements per row: the product of shape */
    uint32_t offset;                /* TEMP: arena bytes per row; STATE: state bytes per batch row */
    int32_t  update;                /* STATE: the value copied into it after each step, or -1 */
} rne_model_value;

/* A loaded model: every figure the step path needs, copied from the blob once at load, plus
 * pointers to the tensor data in the caller's blob. Caller memory, no pointer to itself: it may
 * be a static (sizeof grows with RNE_MAX_NODES and RNE_MAX_VALUES). */
typedef struct rne_model {
    const uint8_t *blob;            /* the caller's blob, borrowed (NULL: not loaded) */
    uint32_t crc;                   /* the blob's CRC-32: its identity for rne_stream_init */
    uint32_t n_nodes;
    uint32_t n_values;
    uint32_t input;                 /* the INPUT value's index */
    uint32_t output;                /* the OUTPUT value's index */
    uint32_t in_dtype;              /* the INPUT's dtype (RNE_DT_F32, RNE_DT_S16, RNE_DT_S32) */
    uint32_t arena_row;             /* arena bytes per row (header.arena_row) */
    uint32_t explicit_state;        /* 1 if the model has STATE values: it runs one step at a
                                       time (a step function) */
    uint32_t in_features;           /* features of one input timestep */
    uint32_t out_features;          /* features of one output timestep */
    uint32_t streamable;            /* 1 if no node reads the sequence backwards */
    uint32_t many_to_one;           /* 1 if the OUTPUT is a LAST value (one row per call) */
    uint32_t max_features;          /* widest per-timestep value */
    uint32_t max_gates;             /* widest gate vector of a recurrent node (G*H, one direction) */
    uint32_t skips;                 /* 1 if a node skips steps (rne_model_layer.skip > 0): the
                                       state ends with the step counter */
    uint32_t updates;               /* STATE values with an update (taken after every step) */
    uint32_t checks_ids;            /* 1 if a GATHER reads the (int32) INPUT: ids checked first */
    float    in_scale;              /* the INPUT value's scale (s16: real = scale * q), else 0 */
    float    out_scale;             /* the OUTPUT value's scale (s16), else 0 (rne_model_io) */
    rne_model_layer nodes[RNE_MAX_NODES];
    rne_model_value values[RNE_MAX_VALUES];
} rne_model;

/* One batch of B independent streams over a model: the caller's state and step scratch, and the
 * identity of the model at rne_stream_init (its blob's CRC and features, and the buffer sizes it
 * was given: each call checks them, RNE_EMODEL). */
typedef struct rne_stream {
    const rne_model *model;
    void    *state;                 /* rne_state_size(model, batch) bytes, 16-byte aligned */
    void    *scratch;               /* rne_scratch_size(model, batch, 1) bytes, 16-byte aligned */
    size_t   state_size;            /* bytes of state and scratch given to rne_stream_init */
    size_t   scratch_size;
    uint32_t batch;
    uint32_t model_crc;             /* model->crc, in_features, out_features, blob, n_nodes, ... */
    uint32_t model_in;
    uint32_t model_out;
    const uint8_t *model_blob;
    uint32_t model_nodes;
    uint32_t model_values;
    uint32_t model_arena_row;       /*   ... n_values and arena_row at rne_stream_init */
    size_t   step_plan[6];          /* internal: one step's scratch and state layout at this batch
                                       (arena, total, state, recurrent blocks, step counter
                                       offsets) and whether a step may take the plain path
                                       (model.c), made once by rne_stream_init */
} rne_stream;

/* Validate `blob` (size bytes) and fill *model. Checks, in order (the first fault decides the
 * status; csrc/blob.c lists each): arguments, size >= header, magic, version (2; version 1:
 * RNE_EVERSION), header fields, blob pointer alignment, counts (1..RNE_MAX_NODES nodes,
 * 2..RNE_MAX_VALUES values), file_size <= size, CRC, tables (alignment, bounds, overlap),
 * tensors, values (kind, dtype, shape, offsets, update, init), nodes (op, fields, their values,
 * tensors), every TEMP / OUTPUT value written, the arena plan. The host must be little-endian
 * (else RNE_EHEADER). On failure *model is zeroed (not loaded).
 * The blob must stay mapped while the model is used. Every size, parameter and tensor address
 * the step path uses is copied into *model here; the step reads only weights and q-tensor rows
 * from the blob. A blob whose tensor data changes after load gives other numbers, never a
 * crash or undefined behaviour; loading another blob into a model that streams use makes those
 * streams refuse to run (RNE_EMODEL) until they are initialized again. */
int rne_model_load(const void *blob, size_t size, rne_model *model);

/* rne_model_load, and where it stopped: if `where` is not NULL, *where names the section, node,
 * tensor (and its role), value, field and element of the first fault (rne_fault; all -1 / none
 * on RNE_OK). The same checks, order and status as rne_model_load. */
int rne_model_load_where(const void *blob, size_t size, rne_model *model, rne_fault *where);

/* A static name for an RNE_FF_* field ("file_size", "shape", "q slot", ...) or RNE_SEC_*
 * section ("header", "node", "value", ...); "?" for an unknown code (never NULL). */
const char *rne_fault_field_name(int field);
const char *rne_fault_section_name(int section);

/* A static English sentence for a status code (never NULL). */
const char *rne_strerror(int code);

/* Bytes of state for `batch` streams; 0 on arithmetic overflow or batch == 0. At least 16 even
 * for a model without state, so that 0 always means an error. Per recurrent node, in node order:
 * h [D][batch][H] (f32: float; integer: int16), then for LSTM c [D][batch][H] (f32: float;
 * integer: int32 Q11.20), each block starting at a multiple of 16 bytes (a CONV's frame cache
 * among them); then the STATE values' blocks ([batch][features] each, rne_value_state_offset);
 * then, if a node skips steps (rne_model_layer.skip), the step count (uint64, a 16-byte block). */
size_t rne_state_size(const rne_model *model, uint32_t batch);

/* Byte offset of node `node`'s state (h block, then c block for LSTM; a CONV's frame cache
 * [(kt - 1) dt][batch][C_in W], oldest frame first) within the state buffer for `batch` streams;
 * (size_t)-1 if that node keeps no state. */
size_t rne_state_offset(const rne_model *model, uint32_t node, uint32_t batch);

/* Byte offset of an LSTM node's c block within the state buffer for `batch` streams (after its
 * h block, at a multiple of 16 bytes); (size_t)-1 if `node` is not an LSTM. */
size_t rne_state_c_offset(const rne_model *model, uint32_t node, uint32_t batch);

/* Byte offset of STATE value `value`'s block ([batch][features] of its dtype) within the state
 * buffer for `batch` streams; (size_t)-1 if that value is not a STATE value. */
size_t rne_value_state_offset(const rne_model *model, uint32_t value, uint32_t batch);

/* Bytes of scratch for a call over `steps` timesteps of `batch` streams in one chunk (steps = 1
 * for rne_step): the arena (header.arena_row bytes per row) and the largest kernel work space;
 * 0 on arithmetic overflow or batch == 0, else at least 16; steps = 0 counts as 1. A model with
 * STATE values runs one step at a time: its figure is that of one step, whatever `steps`. */
size_t rne_scratch_size(const rne_model *model, uint32_t batch, uint32_t steps);

/* Bind a stream to caller memory and reset its state; the stream records the model's identity
 * (its blob's CRC) and the sizes given. RNE_EARG: NULL stream or model, model not loaded, batch 0
 * or too large to address; RNE_ESIZE: state or scratch NULL, not 16-byte aligned, or too small. */
int rne_stream_init(rne_stream *stream, const rne_model *model, uint32_t batch,
                    void *state, size_t state_size, void *scratch, size_t scratch_size);

/* Set the state to the model's initial state (its H0/C0 tensors, or zeros). RNE_EARG for a NULL
 * or uninitialized stream; RNE_EMODEL (state untouched) if the model was re-loaded with another
 * blob (or failed to load) since rne_stream_init, or now needs more state or scratch than the
 * stream was given. */
int rne_stream_reset(rne_stream *stream);

/* One timestep for all B streams: x float[B][in_features] -> y float[B][out_features]; for an
 * integer model x int16[B][in_features] at the input scale -> y int16[B][out_features] at the
 * output scale (the scales are in the metadata key "qio"). For a many-to-one model y is what
 * rne_run would give if the sequence ended at this step (exactly: a step is a one-step rne_run,
 * so a TAKE_LAST with split < F takes every feature from this step). Returns RNE_ESTREAM (and
 * leaves state and y untouched) if the model is not streamable, RNE_EMODEL (likewise) if it was
 * re-loaded since rne_stream_init (rne_stream_reset), RNE_EARG for NULL pointers,
 * RNE_ESIZE if x or y is not aligned to its element type. x and y must not overlap. Stepping
 * gives the same bits as one rne_run over the same steps. */
int rne_step(rne_stream *stream, const void *x, void *y);

/* `steps` timesteps: x float[steps][B][in_features] -> y float[steps][B][out_features], or
 * y float[1][B][out_features] for a many-to-one model (int16 for an integer model, as for
 * rne_step; int32 ids for a model whose INPUT is s32). Starts from the stream's state and leaves
 * the final state in it (for a backward direction, "start" is step steps-1). `scratch`, 16-byte
 * aligned, must hold rne_scratch_size(model, B, steps) bytes, except for a streamable model
 * without STATE values (and without a TAKE_LAST that reads the first step), which needs only
 * rne_scratch_size(model, B, 1): it runs in chunks of the most steps whose scratch fits (the
 * same bits as one chunk; docs/graph.md section 4). steps == 0 is a no-op, except for a many-to-one model, where it is
 * RNE_EARG (there is no last step). RNE_EMODEL as for rne_step; RNE_EARG also for NULL
 * pointers; RNE_ESIZE for a small or misaligned scratch, or x / y not aligned to their element
 * type. x and y must not overlap. */
int rne_run(rne_stream *stream, const void *x, uint32_t steps, void *y,
            void *scratch, size_t scratch_size);

/* rne_run over x's `steps` timesteps of which the first `end` are the sequence and the other
 * steps - end are zeros after it that flush a model's latency (Model.run feeds latency_steps
 * zero frames; docs/graph.md section 6): each node runs as if its input ended there, exactly
 * ONNX's whole-sequence output in rows latency_steps .. steps - 1. A node whose input lags the
 * signal by D steps (its skip) sees its input end at stream step t0 + end + D (t0: the stream's
 * step count at the call): a conv reads zeros from there on (zeroing those rows of its input
 * value in place; the INPUT's rows after `end` must be zeros), a recurrent node stops before it
 * (zeros after, its state the one at that step), TAKE_LAST takes the step before it. end == steps
 * is rne_run. Meant for a model without STATE values. Scratch as rne_run's, except that a model
 * with a TAKE_LAST run with end < steps needs rne_scratch_size(model, B, steps) (one chunk).
 * RNE_EARG for end > steps; the other codes as rne_run. */
int rne_run_end(rne_stream *stream, const void *x, uint32_t steps, uint32_t end, void *y,
                void *scratch, size_t scratch_size);

/* The float <-> int16 boundary of an integer model, for hosts with an FPU (docs/quantization.md
 * section 4; the scales are the blob metadata's qio): q[i] = clamp(floor(x[i] / scale + 0.5),
 * -32768, 32767) computed in double, NaN -> 0, +-inf saturating; y[i] = (float)(q[i] * scale).
 * Not part of the integer step path, which sees int16 only. */
void rne_quantize_s16(const float *x, size_t n, double scale, int16_t *q);
void rne_dequantize_s16(const int16_t *q, size_t n, double scale, float *y);

/* rne_step of an integer model with float input and output, for hosts with an FPU, in one call:
 * x float[B][in_features] -> rne_quantize_s16 at in_scale into xq int16[B][in_features] ->
 * rne_step -> yq int16[B][out_features] -> rne_dequantize_s16 at out_scale into y
 * float[B][out_features]. xq and yq are the caller's (int16-aligned). Returns rne_step's status
 * (y is written only on RNE_OK), or RNE_EARG for NULL pointers or a float model. */
int rne_step_float(rne_stream *stream, const float *x, double in_scale, int16_t *xq,
                   int16_t *yq, double out_scale, float *y);

/* The model's input or output as the blob states it (rne_model_io): what a caller needs to fill x
 * and read y, an integer model's scales included (the blob metadata's qio, without reading JSON;
 * the names are in the metadata only: the C library reads none). */
typedef struct rne_io {
    uint32_t value;                 /* the INPUT or OUTPUT value's index */
    uint32_t dtype;                 /* RNE_DT_F32 (a float model), RNE_DT_S16 (an integer model),
                                       RNE_DT_S32 (an INPUT of token ids) */
    uint32_t fmt;                   /* the model's number format: RNE_FMT_F32; RNE_FMT_S8 if a node
                                       has int8 weights (some may keep int16); else RNE_FMT_S16
                                       (also an int8 conversion whose every node kept int16) */
    float    scale;                 /* RNE_DT_S16: real value = scale * q (finite, > 0); else 0 */
    uint32_t ndim;                  /* the per-step shape: 1 to 4 feature axes (time and batch */
    uint32_t shape[4];              /*   are not in it), shape[ndim..3] = 0 */
    uint32_t features;              /* elements per step and stream: the product of shape */
    uint32_t last;                  /* OUTPUT: 1 if it is one row per call (many-to-one), else 0 */
} rne_io;

/* Fill *io with the model's input (which = RNE_V_INPUT) or output (RNE_V_OUTPUT), from the
 * figures rne_model_load copied. RNE_EARG: NULL model or io, model not loaded, another `which`
 * (*io zeroed). An integer model's x is int16 at io.scale of the input: q = round(x / scale),
 * saturated (rne_quantize_s16, or the integer-only path of examples/firmware/main.c); its y is
 * real = scale * q at the output's scale. */
int rne_model_io(const rne_model *model, int which, rne_io *io);
/* cdef-end */

#ifdef __cplusplus
}
#endif

#endif /* RNNEDGE_H */
