#ifndef CAIRN_CRC32C_HARDWARE_H
#define CAIRN_CRC32C_HARDWARE_H

#include <stddef.h>
#include <stdint.h>

/// 1 when this CPU has a CRC-32C instruction `cairn_crc32c_update` uses (x86-64: SSE 4.2), else 0.
int cairn_crc32c_hardware(void);

/// Continues the raw CRC-32C register `crc` (no pre- or post-inversion) over `count` bytes with
/// the CPU's instruction. Only call it when `cairn_crc32c_hardware()` answered 1.
uint32_t cairn_crc32c_update(uint32_t crc, const void *bytes, size_t count);

#endif
