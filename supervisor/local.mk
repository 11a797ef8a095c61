# supervisor: see ../Makefile.am
