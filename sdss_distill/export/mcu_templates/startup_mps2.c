/* startup_mps2.c: minimal Cortex-M start-up for QEMU's mps2-an385 (Cortex-M3) and mps2-an386
 * (Cortex-M4F) boards: vector table, FPU on when compiled for one, .data copy, .bss clear,
 * newlib's semihosting stdio, then main(). */
#include <stdint.h>
#include <stdlib.h>

extern uint32_t __etext, __data_start__, __data_end__, __bss_start__, __bss_end__, __StackTop;
extern void initialise_monitor_handles(void);
extern int main(void);

void Reset_Handler(void);
void Fault_Handler(void);

void Reset_Handler(void)
{
    uint32_t *src = &__etext, *dst = &__data_start__;
#if defined(__ARM_FP)
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;    /* CPACR: CP10/CP11 full access */
    __asm__ volatile("dsb\n\tisb");
#endif
    while (dst < &__data_end__) {
        *dst++ = *src++;
    }
    for (dst = &__bss_start__; dst < &__bss_end__; ++dst) {
        *dst = 0u;
    }
    initialise_monitor_handles();
    exit(main());
}

void Fault_Handler(void)
{
    exit(3);
}

__attribute__((section(".vectors"), used))
void (*const vector_table[16])(void) = {
    (void (*)(void))(uintptr_t)&__StackTop, Reset_Handler,
    Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler, Fault_Handler,
    0, 0, 0, 0, Fault_Handler, Fault_Handler, 0, Fault_Handler, Fault_Handler,
};
