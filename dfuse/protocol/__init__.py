"""DFU protocol logic with no I/O: constants, codecs, DfuSe commands, planning."""
