"""sem_core.schemas"""
