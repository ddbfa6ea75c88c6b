"""sem_core.models"""
