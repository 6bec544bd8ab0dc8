export { OperatorsModule } from './operators.module';
export { OperatorsService } from './operators.service';
export { OPERATOR_TOKEN_PATTERN } from './operator-token-format';
