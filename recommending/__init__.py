"""What the recommender answers, between the command line and the model: whose taste
(`taste`, `people`, `recent`), which films may be listed (`filters`), the list itself
(`picks`), and the other questions: `match`, `group`, `given_list`, `similar`,
`statistics`."""
