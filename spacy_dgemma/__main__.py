from spacy_dgemma.cli import app

if __name__ == "__main__":
    app()
