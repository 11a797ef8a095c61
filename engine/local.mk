# engine: see ../Makefile.am
