"""The AWS wiring the playbooks need, derived from their triggers: pure, no AWS calls.

``patterns`` (a trigger -> EventBridge event patterns, ``globs`` for its type glob), ``routing``
(the playbooks -> one rule per distinct pattern, and the alarms), then the CloudFormation
stacks: ``hub`` (where Riposte receives events), ``forwarding`` (every other region and
account, to the hub), ``member`` (the responder role); ``template`` holds what they share.
`riposte aws template hub|region|member` prints them.
"""
