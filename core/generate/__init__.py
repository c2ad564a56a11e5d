"""Text to avatar (issue 25): see docs/GENERATE.md."""

# classifier-free guidance of generate/edit, the CLI and the panel: chosen on the validation
# prompt suite (resources/generate/prompts_val.tsv), never on the test suite (MODEL_CARD_generate.md)
DEFAULT_GUIDANCE = 5.0
