# engine/python: the ringmaster Python package
