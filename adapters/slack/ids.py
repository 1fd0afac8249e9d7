"""Names shared by what we render (modals, buttons) and what we parse back (submissions, clicks).

Keeping them in one place means a renamed field cannot silently stop a form from working.
"""

from __future__ import annotations

from workflows import grammar

# Slash commands as the manifest declares them, and the grammar verb each one stands for.
COMMANDS = {"/escalate": "escalate", "/case": "case", "/oncall": "oncall", "/swarm": "swarm", "/kb": "kb",
            "/crisis": "crisis", "/digest": "digest"}

# The message shortcut "Escalate this message".
SHORTCUT_ESCALATE = "escalate_message"

# Modals (view callback ids).
FORM_ESCALATE = "escalate_form"
FORM_REASON = "case_reason"
FORM_INCIDENT_UPDATE = "incident_update"  # the incident card's Post update form

# Input blocks of the escalation form; every input element uses the action id VALUE.
BLOCK_TIER = "tier"
BLOCK_SEVERITY = "severity"
BLOCK_CUSTOMER = "customer"
BLOCK_CATEGORY = "category"
BLOCK_SUMMARY = "summary"
BLOCK_REASON = "reason"
BLOCK_STATUS = "status"  # the update form: the status, and the text customers read
BLOCK_UPDATE = "update"
VALUE = "value"

# Card buttons: action ids are ACTION_PREFIX + action name ("case_claim").
ACTION_PREFIX = "case_"
CARD_ACTIONS_BLOCK = "case_actions"

# What the "let routing decide" option of the tier select sends.
ROUTING_DECIDES = grammar.ROUTING_DECIDES  # the form value that leaves the tier to routing
