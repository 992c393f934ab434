"""Chats shared by the formats: message lists, and a pair of conversations split at their shared prefix."""

from __future__ import annotations

from .base import LineError

ROLES = {"user": "user", "assistant": "assistant", "system": "system", "human": "user", "prompter": "user"}


def messages_of(value, name: str) -> list[dict]:
    """A list of {role, content} with the roles the platform knows (human and prompter are the user)."""
    if not isinstance(value, list) or not value:
        raise LineError(f"{name} must be a non-empty list of {{role, content}} messages")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or "content" not in message:
            raise LineError(f"{name}[{i}] must be an object with role and content")
        role = ROLES.get(message["role"].lower())
        if role is None:
            raise LineError(f"{name}[{i}] has an unknown role '{message['role'][:50]}' (use user, assistant, system)")
        if not isinstance(message["content"], str):
            raise LineError(f"{name}[{i}].content must be a string")
        messages.append({"role": role, "content": message["content"]})
    return messages


def completion_of(value, name: str) -> str:
    """A completion: a string, or (conversational) a list of one assistant message."""
    if isinstance(value, str):
        return value
    messages = messages_of(value, name)
    if len(messages) != 1 or messages[0]["role"] != "assistant":
        raise LineError(f"{name} must be one assistant message after the prompt")
    return messages[0]["content"]


def split_pair(chosen: list[dict], rejected: list[dict], *, names=("chosen", "rejected")) -> tuple[list, str, str]:
    """Two full conversations that share a prefix: (the prefix, chosen's last turn, rejected's last turn).

    The prefix is the prompt, so it must end with the user; each conversation adds exactly one
    assistant turn to it. Anything else (they part earlier, or go on after the answer) is a LineError.
    """
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    if shared == len(chosen) == len(rejected):
        shared -= 1  # the same conversation twice: the last turns are the (equal) responses
    prompt = chosen[:shared]
    for name, conversation in zip(names, (chosen, rejected)):
        if len(conversation) != shared + 1 or conversation[-1]["role"] != "assistant":
            raise LineError(
                f"{names[0]} and {names[1]} must share every turn but their last, an assistant's; "
                f"{name} has {len(conversation) - shared} turns after the shared prefix"
            )
    if not prompt or prompt[-1]["role"] != "user":
        raise LineError(f"the turns {names[0]} and {names[1]} share must end with the user's")
    return prompt, chosen[-1]["content"], rejected[-1]["content"]


def pair_item_obj(*, prompt: list[dict], chosen: str, rejected: str, **native) -> dict:
    """A native comparison line for a chosen/rejected pair, chosen first."""
    return {"messages": prompt, "responses": [chosen, rejected], **native}
