/* Kernels of sdss_student.c, one section per kernel: the generator copies the sections the
 * graph uses (and their helpers), in this order. "@@ name: helpers" opens a section. */
/* @@ round_away: */
/* x rounded half away from zero (C's roundf), for |x| <= 2^22 (callers clamp first). */
static int32_t round_away(float x)
{
    int32_t t = (int32_t)x;         /* truncates towards zero */
    float frac = x - (float)t;      /* exact: t and x share the binade's ulp grid */
    if (frac >= 0.5f) {
        t += 1;
    } else if (frac <= -0.5f) {
        t -= 1;
    }
    return t;
}

/* @@ multiply_by_quantized_multiplier: */
/* gemmlowp SaturatingRoundingDoublingHighMul: high 32 bits of 2*a*b, rounded to nearest. */
static int32_t doubling_high_mul(int32_t a, int32_t b)
{
    int64_t ab;
    int64_t nudge;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? ((int64_t)1 << 30) : (1 - ((int64_t)1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));   /* C division truncates */
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent rounded to nearest, ties away from zero. */
static int32_t rounding_divide_by_pot(int32_t x, int exponent)
{
    int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
    int32_t remainder = x & mask;
    int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

/* TFLite's MultiplyByQuantizedMultiplier for an int32 accumulator (double rounding,
   TFLITE_SINGLE_ROUNDING off, as TFLite Micro is built). */
static int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier, int shift)
{
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    int32_t shifted = (int32_t)((uint32_t)x << left);     /* wraps like TFLite's x * (1 << left) */
    return rounding_divide_by_pot(doubling_high_mul(shifted, multiplier), right);
}

/* @@ fully_connected_f32: */
static void fully_connected_f32(const float *in, int depth, const float *weights,
                                const float *bias, int units, float act_min, float act_max,
                                float *out)
{
    int o, d;
    for (o = 0; o < units; ++o) {
        float total = 0.0f;
        float v;
        for (d = 0; d < depth; ++d) {
            total += in[d] * weights[o * depth + d];
        }
        v = total + (bias ? bias[o] : 0.0f);
        v = v < act_min ? act_min : v;     /* std::max(v, min) */
        v = act_max < v ? act_max : v;     /* std::min(v, max) */
        out[o] = v;
    }
}

/* @@ requantize: multiply_by_quantized_multiplier */
/* An int32 accumulator (bias added) to the output grid: TFLite's requantization, then the
   output zero point and the activation's clamp. Shared by the int8 and int16 kernels. */
static int32_t requantize(int32_t acc, int32_t multiplier, int shift, int32_t output_offset,
                          int32_t act_min, int32_t act_max)
{
    acc = multiply_by_quantized_multiplier(acc, multiplier, shift) + output_offset;
    acc = acc < act_min ? act_min : acc;
    return acc > act_max ? act_max : acc;
}

/* @@ fully_connected_s8: requantize */
/* int8 in and out. Per-channel when n_multipliers == units, per-tensor (one multiplier)
   when it is 1. */
static void fully_connected_s8(const int8_t *in, int depth, int32_t input_offset,
                               const int8_t *weights, int32_t weights_offset,
                               const int32_t *bias, int units, const int32_t *multiplier,
                               const int8_t *shift, int n_multipliers, int32_t output_offset,
                               int32_t act_min, int32_t act_max, int8_t *out)
{
    int o, d;
    for (o = 0; o < units; ++o) {
        int32_t acc = 0;
        int k = n_multipliers > 1 ? o : 0;
        for (d = 0; d < depth; ++d) {
            acc += ((int32_t)weights[o * depth + d] + weights_offset)
                   * ((int32_t)in[d] + input_offset);
        }
        acc += bias ? bias[o] : 0;
        out[o] = (int8_t)requantize(acc, multiplier[k], shift[k], output_offset, act_min,
                                    act_max);
    }
}

/* @@ fully_connected_s16: requantize */
/* TFLite 16x8: int16 in and out, int8 weights, int32 bias. TFLite Micro then keeps an int32
   accumulator and requantizes it like the int8 kernel (its int64 path is for int64 biases).
   Per-channel when n_multipliers == units, per-tensor when it is 1. */
static void fully_connected_s16(const int16_t *in, int depth, int32_t input_offset,
                                const int8_t *weights, int32_t weights_offset,
                                const int32_t *bias, int units, const int32_t *multiplier,
                                const int8_t *shift, int n_multipliers, int32_t output_offset,
                                int32_t act_min, int32_t act_max, int16_t *out)
{
    int o, d;
    for (o = 0; o < units; ++o) {
        int32_t acc = 0;
        int k = n_multipliers > 1 ? o : 0;
        for (d = 0; d < depth; ++d) {
            acc += ((int32_t)weights[o * depth + d] + weights_offset)
                   * ((int32_t)in[d] + input_offset);
        }
        acc += bias ? bias[o] : 0;
        out[o] = (int16_t)requantize(acc, multiplier[k], shift[k], output_offset, act_min,
                                     act_max);
    }
}

/* @@ quantize: round_away */
/* x / scale on the integer grid [qmin, qmax] with `zero_point`, as TFLite Micro's QUANTIZE:
   it rounds then clamps; clamping first to +-bound (within round_away's range, beyond any
   zero point's reach) gives the same integer. */
static int32_t quantize(float x, float scale, int32_t zero_point, float bound, int32_t qmin,
                        int32_t qmax)
{
    float v = x / scale;
    int32_t q;
    v = v < -bound ? -bound : v;
    v = v > bound ? bound : v;
    q = round_away(v) + zero_point;
    q = q < qmin ? qmin : q;
    return q > qmax ? qmax : q;
}

/* @@ quantize_f32_s8: quantize */
static void quantize_f32_s8(const float *in, int n, float scale, int32_t zero_point, int8_t *out)
{
    int k;
    for (k = 0; k < n; ++k) {
        out[k] = (int8_t)quantize(in[k], scale, zero_point, 1024.0f, -128, 127);
    }
}

/* @@ quantize_f32_s16: quantize */
static void quantize_f32_s16(const float *in, int n, float scale, int32_t zero_point, int16_t *out)
{
    int k;
    for (k = 0; k < n; ++k) {
        out[k] = (int16_t)quantize(in[k], scale, zero_point, 131072.0f, -32768, 32767);
    }
}

/* @@ dequantize_s8_f32: */
/* TFLite Micro computes (float)(double(scale) * (q - zero_point)). scale is a float32 (24
   significant bits) and |q - zero_point| < 2^17, so that double product is exact (< 53 bits)
   and the result is the float32 product correctly rounded once: exactly what one float32
   multiplication of the same operands gives. No double arithmetic, so a soft-float target
   links no double routines (about 2 KB on a Cortex-M3 or M4F). */
static void dequantize_s8_f32(const int8_t *in, int n, float scale, int32_t zero_point, float *out)
{
    int k;
    for (k = 0; k < n; ++k) {
        out[k] = (float)((int32_t)in[k] - zero_point) * scale;
    }
}

/* @@ dequantize_s16_f32: */
/* As dequantize_s8_f32: one float32 multiplication equals TFLite Micro's exact double
   product rounded to float32. */
static void dequantize_s16_f32(const int16_t *in, int n, float scale, int32_t zero_point,
                               float *out)
{
    int k;
    for (k = 0; k < n; ++k) {
        out[k] = (float)((int32_t)in[k] - zero_point) * scale;
    }
}
