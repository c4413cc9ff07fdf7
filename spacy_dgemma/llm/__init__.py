"""The DistilledGemma stages: prompts, parsing, generation with document-prefix caching, QLoRA of
the teacher, resumable annotation, distillation and merge (see README.md in this folder).

Importing this package imports no torch; the modules import the LLM stack inside the functions
that need it (install ``spacy-dgemma[llm]``).
"""
