# tests/python
