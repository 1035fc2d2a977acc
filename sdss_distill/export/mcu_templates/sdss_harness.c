/* sdss_harness.c: classify rows read from standard input, print class, scores and their bits.
 *
 * Input: one row per line, SDSS_N_INPUTS whitespace-separated values, each a decimal number
 * (19.47) or the float's IEEE-754 bits as x + 8 hex digits (x419bc28f), which carries the
 * exact float through any C library. Output, one line per row: the class name (or "none"),
 * the scores as decimals with 6 places, then, after "bits", each score's IEEE-754 bits as 8
 * hex digits (the exact value, for bit-for-bit comparisons):
 *     <class> logits <score> ... bits <score bits> ... [<SysTick ticks>] [z <z bits> <err bits>]
 * With a redshift head (SDSS_HAS_Z) each row also goes through sdss_classify_z(): "z" and
 * the bits of z_phot and z_phot_err end the line ("mismatch" after them if its class or
 * scores differ from sdss_classify()'s).
 * On the Cortex-M build (SDSS_SYSTICK defined) each line ends with the SysTick ticks that
 * sdss_classify() took, a first line "calibration <instructions> <ticks>" times a loop of
 * known length (so ticks convert to executed instructions under QEMU's -icount) and
 * "overhead <ticks> <reads>" the cost of the timing itself; a last line "stack <bytes>" is the
 * deepest stack sdss_classify() reached (painted stack, scanned after every row).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sdss_student.h"

#ifdef SDSS_SYSTICK
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SYSTICK_MASK 0x00FFFFFFu

static void systick_start(void)
{
    SYST_RVR = SYSTICK_MASK;
    SYST_CVR = 0u;
    SYST_CSR = 5u;                       /* enable, processor clock, no interrupt */
}

static uint32_t elapsed(uint32_t start, uint32_t end)   /* the counter counts down */
{
    return (start - end) & SYSTICK_MASK;
}

#define PAINT 0xA5A5A5A5u
#define PAINT_WORDS 1024u
static uint32_t *paint_end;           /* one past the highest painted word */

static uint32_t stack_pointer(void)
{
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* Paints the free stack below this function's frame (interrupts are off). */
static __attribute__((noinline)) void paint_stack(void)
{
    uint32_t *top = (uint32_t *)(stack_pointer() & ~3u) - 4;
    uint32_t *p;
    for (p = top - PAINT_WORDS; p < top; ++p) {
        *p = PAINT;
    }
    paint_end = top;
}

/* Bytes from `sp` (the caller's stack pointer at the call) down to the deepest word written. */
static uint32_t stack_depth(uint32_t sp)
{
    uint32_t *p = paint_end - PAINT_WORDS;
    while (p < paint_end && *p == PAINT) {
        ++p;
    }
    return sp - (uint32_t)(uintptr_t)p;
}

static void calibrate(void)
{
    uint32_t reads = 10000u, k, total = 0u;
    uint32_t n = 1000000u;
    uint32_t t0, t1;
    t0 = SYST_CVR;
    /* 2 instructions per iteration: subs, bne */
    __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
    t1 = SYST_CVR;
    printf("calibration %lu %lu\n", 2000000ul, (unsigned long)elapsed(t0, t1));
    for (k = 0; k < reads; ++k) {
        t0 = SYST_CVR;
        t1 = SYST_CVR;
        total += elapsed(t0, t1);
    }
    printf("overhead %lu %lu\n", (unsigned long)total, (unsigned long)reads);
}
#endif

static uint32_t float_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* A score in decimal, 6 places, in integer arithmetic: the Cortex-M C library's printf may
   lack floating point. The bits printed after it are the exact value. */
static void print_decimal(float f)
{
    double a = f < 0.0f ? -(double)f : (double)f;
    const char *sign = f < 0.0f ? "-" : "";
    if (f != f) {
        printf(" nan");
    } else if (a < 4000.0) {             /* a * 1e6 fits 32 bits */
        unsigned long micro = (unsigned long)(a * 1e6 + 0.5);
        printf(" %s%lu.%06lu", sign, micro / 1000000ul, micro % 1000000ul);
    } else if (a < 4e9) {
        printf(" %s%lu", sign, (unsigned long)(a + 0.5));
    } else {
        printf(" %sinf", sign);          /* or beyond 4e9: the bits say which */
    }
}

static int parse_value(const char *token, float *out)
{
    char *end;
    if (token[0] == 'x') {
        uint32_t bits = (uint32_t)strtoul(token + 1, &end, 16);
        if (end == token + 1 || *end) {
            return 0;
        }
        memcpy(out, &bits, sizeof *out);
        return 1;
    }
    *out = (float)strtod(token, &end);
    return end != token && *end == '\0';
}

int main(void)
{
    char line[512];
    float mags[SDSS_N_INPUTS];
    float scores[SDSS_N_CLASSES];
#ifdef SDSS_SYSTICK
    uint32_t deepest = 0u;
    systick_start();
    calibrate();
#endif
    while (fgets(line, sizeof line, stdin)) {
        int k = 0, c;
        char *token = strtok(line, " \t\r\n,");
        while (token && k < SDSS_N_INPUTS && parse_value(token, &mags[k])) {
            ++k;
            token = strtok(NULL, " \t\r\n,");
        }
        if (k == 0 && !token) {
            continue;                    /* blank line */
        }
        if (k != SDSS_N_INPUTS || token) {
            printf("error: expected %d numbers\n", SDSS_N_INPUTS);
            continue;
        }
        {
#ifdef SDSS_SYSTICK
            uint32_t t0, t1, sp, depth;
            paint_stack();
            sp = stack_pointer();
            t0 = SYST_CVR;
            c = sdss_classify(mags, scores);
            t1 = SYST_CVR;
            depth = stack_depth(sp);
            deepest = depth > deepest ? depth : deepest;
#else
            c = sdss_classify(mags, scores);
#endif
            printf("%s logits", c >= 0 ? sdss_class_names[c] : "none");
            for (k = 0; k < SDSS_N_CLASSES; ++k) {
                print_decimal(scores[k]);
            }
            printf(" bits");
            for (k = 0; k < SDSS_N_CLASSES; ++k) {
                printf(" %08lx", (unsigned long)float_bits(scores[k]));
            }
#ifdef SDSS_SYSTICK
            printf(" %lu", (unsigned long)elapsed(t0, t1));
#endif
#ifdef SDSS_HAS_Z
            {   /* the same row through sdss_classify_z: its redshift, its scores compared */
                float scores_z[SDSS_N_CLASSES], z, z_err;
                int cz = sdss_classify_z(mags, scores_z, &z, &z_err);
                printf(" z %08lx %08lx", (unsigned long)float_bits(z),
                       (unsigned long)float_bits(z_err));
                if (cz != c || memcmp(scores_z, scores, sizeof scores_z) != 0) {
                    printf(" mismatch");
                }
            }
#endif
            printf("\n");
        }
    }
#ifdef SDSS_SYSTICK
    printf("stack %lu\n", (unsigned long)deepest);
#endif
    return 0;
}
