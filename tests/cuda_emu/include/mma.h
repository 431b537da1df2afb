// Empty: the TF32 wmma kernel is compiled out in the CPU emulation.
