"""ICT staff operations on students: resets, unlocks, cards, reset-form requests, report, audit.

Layout (pure planning apart from I/O, as the style notes ask):

- ``model``: a student entry parsed into a typed record, lock state, filters. Pure.
- ``lookup``: finding students and their password policies in the directory (I/O).
- ``credentials``: default-password resets, unlock, disable/enable, clearing answers. Modify
  lists are built by pure functions; ``apply_*`` functions do the writes.
- ``cards``: pre-set challenge cards for P2-P3 (plan pure, issue with I/O).
- ``secret_output``: staging a PDF of secrets so a crash never delivers a card or slip that
  does not match the directory.
- ``requests``: the "Student Password Reset Form" CSV: parsing and matching (pure).
- ``report``: streaming aggregation of the whole student tree (pure aggregator + one search).
- ``audit``: the accesslog and the CLI's operator log, merged by time.
- ``qna``: verifying a challenge answer and re-hashing it when the parameters went up
  (reused by the SSPR portal).

Nothing here prints; nothing here puts a password or an answer into an exception, a log or a
return value other than the ``SlipData``/``CardData`` destined for a PDF.
"""
