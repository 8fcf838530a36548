"""`ganforge ui`: a gradio web app over a runs folder (runs.py lists and reads runs, actions.py samples, translates
and upscales, training.py runs training in the background, app.py lays out the page and serves it)."""
