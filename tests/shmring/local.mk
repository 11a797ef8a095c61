# tests/shmring
