"""What the recommender answers, between the command line and the model: whose taste
(`taste`), which films may be listed (`filters`), and the list itself (`picks`)."""
