"""Simulated USB DFU devices (an STM32F411 system bootloader) that plug in under pyusb."""
