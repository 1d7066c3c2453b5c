"""The student's commands: `flask lesson status|review|reset`, `pipenv run page`, and what
app.py needs from them."""
