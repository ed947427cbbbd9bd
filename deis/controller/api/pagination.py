from rest_framework.pagination import PageNumberPagination


class Pagination(PageNumberPagination):
    """`{count, next, previous, results}`, 100 a page, as v1 clients expect."""

    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000
