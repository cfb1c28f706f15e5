"""四性检测 (DA/T 70-2018): authenticity, integrity, usability and security checks at filing (GD),
transfer (YJ) and in storage (BC). See base.py for the shape of a check item."""
