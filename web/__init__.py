"""The local web page (`recommend.py --serve`): the recommender's own functions behind
server-rendered pages, for people who never open a terminal."""
