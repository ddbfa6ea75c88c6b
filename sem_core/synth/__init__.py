"""sem_core.synth"""
