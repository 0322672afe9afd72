"""Application services: the operations of the product, over the ORM.

The GraphQL layer and the HTTP edges call these; they raise domain errors.
"""
