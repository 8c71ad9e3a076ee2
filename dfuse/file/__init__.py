"""The .dfu file codec (DfuSe and plain DFU 1.1) and conversions from/to hex, s19, bin."""
