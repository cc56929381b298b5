"""The tutor's rules, one module per part a reader looks for:

- `conversations`: starting, finding (one's own only), listing, renaming, deleting;
- `settings`: a course's tutor settings, its rate limit and monthly token budget;
- `turns`: a question, inside the request's transaction, up to a `PreparedTurn`;
- `answers`: the answer, streamed and stored after the request's transaction has
  committed (the one place the tutor opens transactions of its own);
- `tools`: what the model may look up while it answers;
- `usage`: answers, tokens and their estimated cost by course, learner and day.

Services receive what the routes' dependencies (`tutor.permissions`) have already
authorized: an owned conversation, a course the caller is a member of or edits."""

from lyceum.tutor.service.answers import AnswerService
from lyceum.tutor.service.conversations import (
    ConversationService,
    conversation_out,
    message_out,
)
from lyceum.tutor.service.settings import TutorSettingsService
from lyceum.tutor.service.turns import (
    CitationEvent,
    ConversationState,
    DeltaEvent,
    DoneEvent,
    ErrorEvent,
    PreparedTurn,
    ToolEvent,
    TurnEvent,
    TurnService,
    normalise_question,
)
from lyceum.tutor.service.usage import UsageScope, UsageService

__all__ = [
    "AnswerService",
    "CitationEvent",
    "ConversationService",
    "ConversationState",
    "DeltaEvent",
    "DoneEvent",
    "ErrorEvent",
    "PreparedTurn",
    "ToolEvent",
    "TurnEvent",
    "TurnService",
    "TutorSettingsService",
    "UsageScope",
    "UsageService",
    "conversation_out",
    "message_out",
    "normalise_question",
]
