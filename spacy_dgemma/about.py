__title__ = "spacy-dgemma"
__version__ = "0.1.0"
