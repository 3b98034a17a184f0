"""The seed's investigation by machine: artifacts, the analyst's questions answered, a narrative.

``assess`` (pure) turns the triggering alerts and the enrichment outputs into findings
(question, answer, evidence, confidence), open questions and a verdict; ``narrate`` (pure)
writes the narrative and the recommendation from those findings only. ``actions`` registers
them as ``investigation.assess`` and ``investigation.narrate``.
"""
