"""r1kit: the DeepSeek-R1 training system (arXiv:2501.12948), from a laptop CPU to GPU clusters.

Vocabulary, used everywhere: a *prompt* is one question rendered through a template; a *completion* is
one sampled answer to it; a *group* is the G completions of one prompt; a *rollout* is the B groups of
one training step; each completion gets a *reward* and, relative to its group, an *advantage*.

Dimensions: B prompts, G completions per group, N = B*G completions, T tokens, V vocabulary size.
"""

__version__ = "0.1.0"
