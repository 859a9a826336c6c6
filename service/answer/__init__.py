"""Grounded answers: prompt, coverage check, generation and the citation gate."""

from service.answer.pipeline import ABSTAIN_MESSAGE, Answerer, AskEvent, LLMQueue

__all__ = ["Answerer", "AskEvent", "LLMQueue", "ABSTAIN_MESSAGE"]
