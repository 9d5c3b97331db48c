"""The deterministic checks of a text, what code checks better than a model: a post's
sentences (`sentences`: the one splitter every check reads), LinkedIn's limits,
overstated words and the scores (`rules`), numbers and dates (`claims`), named entities
(`entities`), grounding in the title and context (`grounding`), support of a sentence's
content words (`support`), reversals of the context (`polarity`), the reader's voice
and the hook (`voice`), how a post reads (`prose`: length, repetition, a stock
question) and how it writes the source's terms (`terms`), the verifiers' deterministic
reports (`verdicts`; what they find, `findings`, and the StyleChecker's, `style`), the
post's layout (`compose`), hashtags (`hashtags`) and how counts read (`wording`).

The bottom layer: imports nothing of `agents.teams`, `agents.runtime` or `agents.llm`.
"""
