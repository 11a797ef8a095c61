# kernels: see ../Makefile.am
