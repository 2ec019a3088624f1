"""Protocol adapters: thin routers that translate a wire format to and from the data plane."""
