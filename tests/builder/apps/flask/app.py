import os

from flask import Flask

app = Flask(__name__)


@app.route("/")
def index():
    return f"hello from flask on port {os.environ.get('PORT')}\n"
