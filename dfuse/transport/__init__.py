"""USB transports: the Transport ABC and the pyusb implementation."""
